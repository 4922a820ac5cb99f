//! Policies: their configuration, the evaluation issuance asks for before it
//! signs, and the violations of the whole inventory.
//!
//! Violations are not stored: `list_policy_violations` judges certificates
//! when it is read, against the policies as they are then, so a changed
//! policy or certificate shows at once and there is no second copy to keep
//! in step. Each page is bounded: it loads at most `MAX_POLICIES` policies and
//! examines at most `SCAN_BUDGET` certificates (in name order, resuming from
//! its token), so a large inventory is read over several pages, never in one
//! request.

use std::collections::BTreeMap;

use certctl_common::StoreError;
use certctl_domain::DomainError;
use certctl_domain::inventory::{Certificate, KeyAlgorithm, RenewalPolicy};
use certctl_domain::name::{self, Collection};
use certctl_domain::page;
use certctl_domain::policy::{self, Policy, Severity, Subject, Violation};
use serde::{Deserialize, Serialize};

use super::{Caller, Inventory, Result};
use crate::store::{CertificateOrder, CertificateQuery, Cursor, Store};

/// More policies than this are refused at creation; evaluation reads them all.
pub const MAX_POLICIES: usize = 1000;
/// Certificates one page of violations examines at most.
pub const SCAN_BUDGET: i64 = 1000;
const SCAN_BATCH: i64 = 200;

/// A certificate, or a description of one, to evaluate. Set fields replace
/// what the named certificate says.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub certificate: String,
    pub common_name: String,
    pub subject_alt_names: Vec<String>,
    pub issuer: String,
    pub key_algorithm: Option<KeyAlgorithm>,
    pub lifetime_secs: Option<i64>,
    pub environment: String,
    pub team: String,
    pub metadata: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub policies: Vec<String>,
}

/// A violation and the certificate it is about (empty for a description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateViolation {
    pub certificate: String,
    pub violation: Violation,
}

#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    pub policy: String,
    pub severity: Option<Severity>,
    pub certificate: String,
}

#[derive(Debug, Clone)]
pub struct ViolationPage {
    pub violations: Vec<CertificateViolation>,
    pub next_page_token: String,
    /// Per policy, per severity, over `violations`.
    pub counts: BTreeMap<String, BTreeMap<Severity, i32>>,
    pub examined: i32,
}

/// Where a violation listing resumes: inside a certificate whose violations
/// did not fit the last page, or after the last certificate examined.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScanPosition {
    /// The certificate to resume in, at violation `skip`.
    #[serde(default)]
    within: Option<(String, usize)>,
    /// The last certificate fully examined.
    #[serde(default)]
    after: Option<String>,
}

impl<S: Store> Inventory<S> {
    pub async fn create_policy(&self, caller: &Caller, mut policy: Policy) -> Result<Policy> {
        policy.normalize();
        policy.validate()?;
        if self.all_policies().await?.len() >= MAX_POLICIES {
            return Err(DomainError::FailedPrecondition(format!(
                "there are already {MAX_POLICIES} policies; merge some before adding another"
            ))
            .into());
        }
        policy.create_time = self.now();
        policy.update_time = policy.create_time;
        self.create_doc(caller, "CreatePolicy", Collection::Policies, &policy).await?;
        Ok(policy)
    }

    pub async fn update_policy(&self, caller: &Caller, patch: Policy, mask: &[String]) -> Result<Policy> {
        let mut current: Policy = self.store.get_document(&patch.id).await?;
        current.apply_update(patch, mask)?;
        current.update_time = self.now();
        self.update_doc(caller, "UpdatePolicy", Collection::Policies, &current, mask).await?;
        Ok(current)
    }

    pub async fn delete_policy(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = name::parse("name", Collection::Policies, name)?;
        self.delete_doc::<Policy>(caller, "DeletePolicy", name, id).await
    }

    /// Every policy, in id order (at most `MAX_POLICIES`).
    async fn all_policies(&self) -> Result<Vec<Policy>> {
        let mut out: Vec<Policy> = Vec::new();
        loop {
            let after = out.last().map(|p| p.id.clone());
            let batch: Vec<Policy> = self.store.list_documents(after.as_deref(), 500).await?;
            let done = batch.len() < 500;
            out.extend(batch);
            if done || out.len() >= MAX_POLICIES {
                out.truncate(MAX_POLICIES);
                return Ok(out);
            }
        }
    }

    /// `names` empty: every policy; else exactly these, each of which must exist.
    async fn policies_named(&self, field: &str, names: &[String]) -> Result<Vec<Policy>> {
        if names.is_empty() {
            return self.all_policies().await;
        }
        let mut out = Vec::new();
        for (i, n) in names.iter().enumerate() {
            out.push(self.policy_named(&format!("{field}[{i}]"), n).await?);
        }
        Ok(out)
    }

    async fn policy_named(&self, field: &str, policy: &str) -> Result<Policy> {
        let id = name::parse(field, Collection::Policies, policy)?;
        match self.store.get_document::<Policy>(id).await {
            Ok(p) => Ok(p),
            Err(StoreError::NotFound { .. }) => {
                Err(DomainError::invalid(field, format!("{policy} does not exist")).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn renewal_policy_of(&self, certificate: &Certificate) -> Result<RenewalPolicy> {
        let Some(id) = certificate.renewal_policy.strip_prefix("renewalPolicies/") else {
            return Ok(RenewalPolicy::default());
        };
        match self.store.get_document::<RenewalPolicy>(id).await {
            Ok(p) => Ok(p),
            Err(StoreError::NotFound { .. }) => Ok(RenewalPolicy::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// What the inventory knows of `certificate` for judging it: its names,
    /// issuer, metadata, labels, environment and team, its current version's
    /// key and lifetime (else the key type it asks for), and the renewal lead
    /// its renewal policy gives that lifetime.
    async fn subject_of(&self, certificate: &Certificate, lifetime_override: Option<i64>) -> Result<Subject> {
        let mut key_algorithm = certificate.key_algorithm;
        let mut lifetime = None;
        if let Some(current) = &certificate.current {
            lifetime = Some(current.not_after - current.not_before);
            match self.store.get_version(&certificate.id, current.version).await {
                Ok(v) => key_algorithm = Some(v.parsed.key_algorithm),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let lifetime = lifetime_override.or(lifetime);
        let renewal = self.renewal_policy_of(certificate).await?;
        let mut names = Vec::new();
        if !certificate.common_name.is_empty() {
            names.push(certificate.common_name.clone());
        }
        names.extend(certificate.subject_alt_names.iter().filter(|n| **n != certificate.common_name).cloned());
        Ok(Subject {
            names,
            issuer: Some(certificate.issuer.clone()),
            metadata: certificate.metadata.clone(),
            labels: certificate.labels.clone(),
            environment: certificate.environment.clone(),
            team: certificate.team.clone(),
            lifetime_secs: lifetime,
            key_algorithm,
            renewal_lead_secs: policy::renewal_lead(&renewal, lifetime),
        })
    }

    /// The violations `request` has under the policies it names (or all),
    /// most severe first. Writes nothing.
    pub async fn evaluate_policy(&self, request: Evaluation) -> Result<Vec<CertificateViolation>> {
        let policies = self.policies_named("policies", &request.policies).await?;
        if policies.is_empty() {
            // Nothing to judge by: spare issuance's every signature the reads below.
            return Ok(Vec::new());
        }
        let mut subject = if request.certificate.is_empty() {
            Subject { issuer: Some(request.issuer.clone()), lifetime_secs: request.lifetime_secs, ..Default::default() }
        } else {
            let id = name::parse("certificate", Collection::Certificates, &request.certificate)?;
            let certificate = self.store.get_certificate(id).await?;
            self.subject_of(&certificate, request.lifetime_secs).await?
        };
        if !request.common_name.is_empty() || !request.subject_alt_names.is_empty() {
            subject.names = std::iter::once(request.common_name.clone())
                .filter(|n| !n.is_empty())
                .chain(request.subject_alt_names.iter().filter(|n| **n != request.common_name).cloned())
                .collect();
        }
        if !request.issuer.is_empty() {
            subject.issuer = Some(request.issuer.clone());
        }
        if request.key_algorithm.is_some() {
            subject.key_algorithm = request.key_algorithm;
        }
        if !request.environment.is_empty() {
            subject.environment = request.environment.clone();
        }
        if !request.team.is_empty() {
            subject.team = request.team.clone();
        }
        if !request.metadata.is_empty() {
            subject.metadata = request.metadata.clone();
        }
        if !request.labels.is_empty() {
            subject.labels = request.labels.clone();
        }
        let mut violations: Vec<CertificateViolation> = policies
            .iter()
            .flat_map(|p| p.evaluate(&subject))
            .map(|violation| CertificateViolation { certificate: request.certificate.clone(), violation })
            .collect();
        // Stable: within a severity, policy order then rule order.
        violations.sort_by_key(|v| std::cmp::Reverse(v.violation.severity));
        Ok(violations)
    }

    /// The violations of the inventory's certificates (revoked ones are out
    /// of service and skipped), by certificate name; see the module comment
    /// for how a page is bounded.
    pub async fn list_policy_violations(
        &self,
        filter: &ViolationFilter,
        page_size: i32,
        page_token: &str,
    ) -> Result<ViolationPage> {
        let limit = page::page_size(page_size)? as usize;
        let policies = if filter.policy.is_empty() {
            self.all_policies().await?
        } else {
            vec![self.policy_named("policy", &filter.policy).await?]
        };
        let only = if filter.certificate.is_empty() {
            None
        } else {
            Some(name::parse("certificate", Collection::Certificates, &filter.certificate)?.to_owned())
        };
        let fingerprint = page::query_fingerprint(&[
            "policyViolations",
            &filter.policy,
            &format!("{:?}", filter.severity),
            &filter.certificate,
        ]);
        let mut position = match page::decode_token(page_token, &fingerprint)? {
            Some(v) => serde_json::from_value::<ScanPosition>(v)
                .map_err(|_| DomainError::invalid("page_token", "not a page token issued by this server"))?,
            None => ScanPosition { within: None, after: None },
        };
        let mut out = ViolationPage {
            violations: Vec::new(),
            next_page_token: String::new(),
            counts: BTreeMap::new(),
            examined: 0,
        };
        if let Some((id, skip)) = position.within.take() {
            // Resume inside the certificate the last page stopped in (if it
            // still exists), then go on after it.
            position.after = Some(id.clone());
            if let Some(c) = self.certificate_if_exists(&id).await?
                && let Some(stop) = self.collect(&policies, filter, &c, skip, limit, &mut out).await?
            {
                out.next_page_token = token(&fingerprint, ScanPosition { within: Some((c.id, stop)), after: None });
                return Ok(finish(out));
            }
        }
        loop {
            let batch: Vec<Certificate> = match &only {
                Some(id) if position.after.is_none() => self.certificate_if_exists(id).await?.into_iter().collect(),
                Some(_) => Vec::new(),
                None => {
                    let room = SCAN_BUDGET - i64::from(out.examined);
                    self.store
                        .list_certificates(&CertificateQuery {
                            owner: None,
                            team: None,
                            state: None,
                            issuer: None,
                            environment: None,
                            expire_before: None,
                            renew_before: None,
                            search: None,
                            order: CertificateOrder::Name { descending: false },
                            basic: false,
                            after: position.after.clone().map(|id| Cursor { key: 0, id }),
                            limit: room.min(SCAN_BATCH),
                            now: self.now(),
                        })
                        .await?
                }
            };
            let exhausted = match &only {
                Some(_) => true,
                None => (batch.len() as i64) < SCAN_BATCH.min(SCAN_BUDGET - i64::from(out.examined)),
            };
            for c in batch {
                if let Some(stop) = self.collect(&policies, filter, &c, 0, limit, &mut out).await? {
                    out.next_page_token = token(&fingerprint, ScanPosition { within: Some((c.id, stop)), after: None });
                    return Ok(finish(out));
                }
                position.after = Some(c.id);
            }
            if exhausted {
                return Ok(finish(out));
            }
            if i64::from(out.examined) >= SCAN_BUDGET || out.violations.len() >= limit {
                out.next_page_token = token(&fingerprint, position);
                return Ok(finish(out));
            }
        }
    }

    async fn certificate_if_exists(&self, id: &str) -> Result<Option<Certificate>> {
        match self.store.get_certificate(id).await {
            Ok(c) => Ok(Some(c)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds `certificate`'s violations from the `skip`th to the page. Returns
    /// where to resume in it when they do not all fit.
    async fn collect(
        &self,
        policies: &[Policy],
        filter: &ViolationFilter,
        certificate: &Certificate,
        skip: usize,
        limit: usize,
        out: &mut ViolationPage,
    ) -> Result<Option<usize>> {
        out.examined += 1;
        if certificate.revoked {
            return Ok(None);
        }
        let subject = self.subject_of(certificate, None).await?;
        let name = certificate.name();
        let found: Vec<Violation> = policies
            .iter()
            .flat_map(|p| p.evaluate(&subject))
            .filter(|v| filter.severity.is_none_or(|s| v.severity == s))
            .collect();
        for (i, violation) in found.into_iter().enumerate().skip(skip) {
            if out.violations.len() >= limit {
                return Ok(Some(i));
            }
            out.violations.push(CertificateViolation { certificate: name.clone(), violation });
        }
        Ok(None)
    }
}

fn token(fingerprint: &str, position: ScanPosition) -> String {
    page::encode_token(fingerprint, serde_json::to_value(position).expect("plain data"))
}

fn finish(mut page: ViolationPage) -> ViolationPage {
    for v in &page.violations {
        *page.counts.entry(v.violation.policy.clone()).or_default().entry(v.violation.severity).or_default() += 1;
    }
    page
}
