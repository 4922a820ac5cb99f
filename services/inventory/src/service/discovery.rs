//! Discovered certificates: what agents report finding on their hosts, and
//! the operator's decision to claim (import) or dismiss each one.

use certctl_common::StoreError;
use certctl_domain::discovery::{
    self, DiscoveredCertificate, DiscoveryState, MAX_CERTIFICATE_DER_LEN, MAX_REPORTS, Sighting,
};
use certctl_domain::error::Violations;
use certctl_domain::inventory::{Owner, Team};
use certctl_domain::name::{self, Collection};
use certctl_domain::{DomainError, page};
use certctl_pki::ParseError;

use super::{Caller, ImportItem, Inventory, Page, Result, derived_certificate_id};
use crate::store::{DiscoveryQuery, DiscoveryTally, Store};

/// One certificate file as an agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscoveryReport {
    pub path: String,
    pub certificate_der: Vec<u8>,
}

/// Parses the reports; every report that is not a certificate is named.
fn sightings(reports: Vec<DiscoveryReport>) -> std::result::Result<Vec<Sighting>, DomainError> {
    let mut v = Violations::new();
    v.check(reports.len() <= MAX_REPORTS, "reports", "at most 1000 reports per call");
    let mut out = Vec::with_capacity(reports.len());
    for (i, r) in reports.into_iter().enumerate() {
        v.merge(discovery::validate_path(&format!("reports[{i}].path"), &r.path));
        let field = format!("reports[{i}].certificate_der");
        if r.certificate_der.is_empty() {
            v.add(field, "required");
            continue;
        }
        if r.certificate_der.len() > MAX_CERTIFICATE_DER_LEN {
            v.add(field, "at most 64 KiB");
            continue;
        }
        let pem = certctl_pki::parse::to_pem("CERTIFICATE", &r.certificate_der);
        match certctl_pki::parse_pem_chain(&pem) {
            Ok(chain) => out.push(Sighting { path: r.path, pem: chain.pem, parsed: chain.leaf }),
            Err(ParseError::BadCertificate { reason, .. }) => {
                v.add(field, format!("not a DER-encoded X.509 certificate: {reason}"))
            }
            Err(e) => v.add(field, e.to_string()),
        }
    }
    v.into_result()?;
    Ok(out)
}

impl<S: Store> Inventory<S> {
    /// Records what `agent` found. All or nothing: a report that does not
    /// parse refuses the call.
    pub async fn report_discoveries(
        &self,
        caller: &Caller,
        agent: &str,
        reports: Vec<DiscoveryReport>,
    ) -> Result<DiscoveryTally> {
        let mut v = Violations::new();
        let id = name::parse("agent", Collection::Agents, agent).map_err(|e| v.merge(Err(e))).ok();
        let parsed = sightings(reports).map_err(|e| v.merge(Err(e))).ok();
        v.into_result()?;
        let (id, sightings) = (id.expect("checked"), parsed.expect("checked"));
        let found = self.store.get_agent(id).await?;
        if let Some(at) = found.retire_time {
            return Err(DomainError::FailedPrecondition(format!(
                "{agent} was retired at {}; its reports are refused",
                certctl_domain::rfc3339(at)
            ))
            .into());
        }
        let tally = self
            .store
            .report_discoveries(agent, &sightings, self.now(), |d| {
                self.event(
                    caller,
                    "DiscoverCertificate",
                    &d.name(),
                    serde_json::json!({
                        "fingerprint": d.fingerprint,
                        "subject": d.subject,
                        "state": d.state.as_str(),
                        "certificate": d.certificate,
                        "agent": agent,
                        "path": d.locations.first().map(|l| l.path.as_str()),
                    }),
                )
            })
            .await?;
        if tally.new > 0 || tally.known > 0 {
            self.committed();
        }
        Ok(tally)
    }

    pub async fn get_discovered_certificate(&self, name: &str) -> Result<DiscoveredCertificate> {
        let id = name::parse("name", Collection::DiscoveredCertificates, name)?;
        Ok(self.store.get_discovered_certificate(id).await?)
    }

    pub async fn list_discovered_certificates(
        &self,
        state: Option<DiscoveryState>,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<DiscoveredCertificate>> {
        let limit = page::page_size(page_size)?;
        let fingerprint = page::query_fingerprint(&["discovered_certificates", &format!("{state:?}")]);
        let after = page::decode_token(page_token, &fingerprint)?
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| DomainError::invalid("page_token", "not a page token issued by this server"))
            })
            .transpose()?;
        let query = DiscoveryQuery { state, after, limit: limit + 1 };
        let mut items = self.store.list_discovered_certificates(&query).await?;
        let next_page_token = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            page::encode_token(&fingerprint, serde_json::json!(items.last().expect("non-empty").id))
        } else {
            String::new()
        };
        Ok(Page { items, next_page_token })
    }

    /// Imports a discovered certificate the way ImportCertificates does, and
    /// marks it CLAIMED. The import and the mark are two transactions; a
    /// claim interrupted between them is finished by claiming again, which
    /// finds the version by its fingerprint instead of importing twice.
    pub async fn claim_discovered_certificate(
        &self,
        caller: &Caller,
        name: &str,
        certificate_id: &str,
        owner: &str,
        team: &str,
    ) -> Result<DiscoveredCertificate> {
        let mut v = Violations::new();
        let id = name::parse("name", Collection::DiscoveredCertificates, name).map_err(|e| v.merge(Err(e))).ok();
        if !certificate_id.is_empty() {
            v.merge(name::validate_id("certificate_id", certificate_id));
        }
        v.merge(name::parse_optional("owner", Collection::Owners, owner));
        v.merge(name::parse_optional("team", Collection::Teams, team));
        v.into_result()?;
        let id = id.expect("checked");
        self.require::<Owner>("owner", Collection::Owners, owner).await?;
        self.require::<Team>("team", Collection::Teams, team).await?;
        let found = self.store.get_discovered_certificate(id).await?;
        let asked = (!certificate_id.is_empty()).then(|| Collection::Certificates.name(certificate_id));
        if found.state == DiscoveryState::Claimed {
            return match asked {
                Some(asked) if asked != found.certificate => {
                    Err(DomainError::FailedPrecondition(format!("{name} is already claimed by {}", found.certificate))
                        .into())
                }
                _ => Ok(found),
            };
        }
        let certificate = match self.store.certificate_with_fingerprint(&found.fingerprint).await? {
            Some(managed) => {
                let managed = Collection::Certificates.name(&managed);
                if asked.as_ref().is_some_and(|asked| *asked != managed) {
                    return Err(DomainError::FailedPrecondition(format!(
                        "{name} is already a version of {managed}; claim it without certificate_id, or as {managed}"
                    ))
                    .into());
                }
                managed
            }
            None => {
                let target_id = match certificate_id {
                    "" => self.free_certificate_id(&found).await?,
                    given => given.to_owned(),
                };
                let item = ImportItem {
                    pem_chain: found.pem.clone(),
                    certificate_id: target_id.clone(),
                    owner: owner.to_owned(),
                    team: team.to_owned(),
                    environment: String::new(),
                    source: name.to_owned(),
                };
                self.import_one(caller, item, name).await?;
                Collection::Certificates.name(&target_id)
            }
        };
        let event = self.event(
            caller,
            "ClaimDiscoveredCertificate",
            name,
            serde_json::json!({"certificate": certificate, "fingerprint": found.fingerprint}),
        );
        let claimed = self.store.set_discovery_state(id, DiscoveryState::Claimed, &certificate, event).await?;
        self.committed();
        Ok(claimed)
    }

    /// The first id derived from the certificate's names that no managed
    /// certificate has: a claim creates a certificate of its own.
    async fn free_certificate_id(&self, found: &DiscoveredCertificate) -> Result<String> {
        let chain = certctl_pki::parse_pem_chain(&found.pem)
            .map_err(|e| StoreError::Internal(format!("discovered_certificates.pem of {}: {e}", found.id)))?;
        let base = derived_certificate_id(&chain.leaf);
        for n in 1.. {
            let candidate = name::numbered_id(&base, n);
            match self.store.get_certificate(&candidate).await {
                Err(StoreError::NotFound { .. }) => return Ok(candidate),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the candidates never run out")
    }

    /// Marks a discovered certificate DISMISSED; dismissing it again changes nothing.
    pub async fn dismiss_discovered_certificate(&self, caller: &Caller, name: &str) -> Result<DiscoveredCertificate> {
        let id = name::parse("name", Collection::DiscoveredCertificates, name)?;
        let found = self.store.get_discovered_certificate(id).await?;
        match found.state {
            DiscoveryState::Dismissed => Ok(found),
            DiscoveryState::Claimed => Err(DomainError::FailedPrecondition(format!(
                "{name} is managed as {}; delete that certificate to unmanage it",
                found.certificate
            ))
            .into()),
            DiscoveryState::New => {
                let event = self.event(caller, "DismissDiscoveredCertificate", name, serde_json::Value::Null);
                let dismissed = self.store.set_discovery_state(id, DiscoveryState::Dismissed, "", event).await?;
                self.committed();
                Ok(dismissed)
            }
        }
    }
}
