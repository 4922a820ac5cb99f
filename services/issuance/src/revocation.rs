//! Publishing revocation: a signed DER CRL per Local CA authority (re-signed
//! on every revocation and at half its lifetime), OCSP answers signed by the
//! authority itself, and the loops that keep CRLs fresh and tell the
//! inventory what was signed and revoked.

use std::time::Duration;

use certctl_common::caller::Caller;
use certctl_common::shutdown::Shutdown;
use certctl_domain::DomainError;
use certctl_pki::ocsp::{self, CertStatus, IssuerHashes, OcspResponseStatus};

use crate::inventory::InventoryError;
use crate::service::{Issuance, IssuanceError, Result, serial_hex};
use crate::store::CrlRecord;

/// OCSP answers are good for this long; relying parties ask again after.
const OCSP_VALIDITY_SECS: i64 = 3600;
const SYNC_BATCH: i64 = 200;

/// `issuers/{issuer}/authorities/{authority}` → (issuer, authority).
pub fn parse_authority_name(name: &str) -> Result<(String, String), DomainError> {
    let bad = || {
        DomainError::invalid(
            "authority",
            format!("`{name}` is not an authority name: expected `issuers/{{issuer}}/authorities/{{authority}}`"),
        )
    };
    let rest = name.strip_prefix("issuers/").ok_or_else(bad)?;
    let (issuer, authority) = rest.split_once("/authorities/").ok_or_else(bad)?;
    certctl_domain::name::validate_id("authority", issuer)?;
    certctl_domain::name::validate_id("authority", authority)?;
    Ok((issuer.to_owned(), authority.to_owned()))
}

impl Issuance {
    /// The current CRL of an authority, re-signed first when it is past
    /// half its lifetime (or missing).
    pub async fn crl(&self, authority_name: &str) -> Result<CrlRecord> {
        let (issuer, authority) = parse_authority_name(authority_name)?;
        self.refresh_crl(&issuer, &authority, false).await
    }

    /// Re-signs an authority's CRL when `force`d, missing or half-expired.
    pub(crate) async fn refresh_crl(&self, issuer: &str, authority: &str, force: bool) -> Result<CrlRecord> {
        let now = self.now();
        let lifetime = self.config.crl_lifetime_secs;
        let current = self.store.get_crl(issuer, authority).await?;
        if let Some(crl) = &current
            && !force
            && now < crl.this_update + lifetime / 2
        {
            return Ok(crl.clone());
        }
        let connector = self.connector(issuer).await?;
        let ca = connector.local_ca().ok_or_else(|| {
            DomainError::FailedPrecondition(format!(
                "issuers/{issuer} is not a Local CA; its CA publishes its own revocation lists"
            ))
        })?;
        let loaded = ca
            .authority(authority)
            .ok_or_else(|| DomainError::not_found(format!("issuers/{issuer}/authorities/{authority}")))?;
        let revoked = self.store.revoked_serials(issuer, authority).await?;
        // Numbers grow with time so replicas that re-sign at once never go
        // backwards; a same-second re-sign still gets a higher number.
        let number = (now * 1000).max(current.as_ref().map_or(0, |c| c.number + 1));
        let der = loaded.sign_crl(&revoked, number, now, now + lifetime)?;
        let crl = CrlRecord {
            issuer_id: issuer.to_owned(),
            authority_id: authority.to_owned(),
            number,
            der,
            this_update: now,
            next_update: now + lifetime,
        };
        self.store.save_crl(&crl).await?;
        Ok(self.store.get_crl(issuer, authority).await?.unwrap_or(crl))
    }

    /// Answers a DER OCSP request for one authority with a complete DER
    /// OCSPResponse, refusals included, as RFC 6960 wants.
    pub async fn answer_ocsp(&self, authority_name: &str, request_der: &[u8]) -> Result<Vec<u8>> {
        let (issuer, authority) = parse_authority_name(authority_name)?;
        let connector = self.connector(&issuer).await?;
        let Some(ca) = connector.local_ca() else {
            return Ok(ocsp::error_response(OcspResponseStatus::Unauthorized));
        };
        let Some(loaded) = ca.authority(&authority) else {
            return Err(DomainError::not_found(format!("issuers/{issuer}/authorities/{authority}")).into());
        };
        let request = match ocsp::parse_request(request_der) {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!(error = %e, "refused a malformed OCSP request");
                return Ok(ocsp::error_response(e.response_status()));
            }
        };
        let hashes = IssuerHashes::new(&loaded.certificate_der)
            .map_err(|e| IssuanceError::Misconfigured(format!("{}: {e}", loaded.name())))?;
        // RFC 6960 §2.3: a request about another CA's certificates is `unauthorized`.
        if request.ids.iter().any(|id| !hashes.matches(id)) {
            return Ok(ocsp::error_response(OcspResponseStatus::Unauthorized));
        }
        let now = self.now();
        let mut answers = Vec::with_capacity(request.ids.len());
        for id in request.ids {
            let serial = serial_hex(&id.serial);
            let status = match self.store.get_issued(&issuer, &serial).await {
                Ok(found) if found.authority_id == authority => match found.revocation {
                    Some(r) => CertStatus::Revoked {
                        revoked_at: r.time,
                        reason: (r.reason != certctl_domain::issuance::RevocationReason::Unspecified)
                            .then(|| r.reason.code()),
                    },
                    None => CertStatus::Good,
                },
                Ok(_) | Err(certctl_common::StoreError::NotFound { .. }) => CertStatus::Unknown,
                Err(e) => return Err(e.into()),
            };
            answers.push((id, status));
        }
        let nonce = request.nonce.as_deref();
        ocsp::sign_response(
            loaded.key(),
            &loaded.certificate_der,
            &answers,
            now,
            now,
            Some(now + OCSP_VALIDITY_SECS),
            nonce,
        )
        .map_err(|e| IssuanceError::Misconfigured(format!("OCSP signing failed: {e}")))
    }

    /// Batch revocation: each item on its own.
    pub async fn revoke_many(
        &self,
        caller: &Caller,
        items: Vec<(String, certctl_domain::issuance::RevocationReason)>,
    ) -> Vec<(String, Option<String>)> {
        let mut results = Vec::with_capacity(items.len());
        for (name, reason) in items {
            let outcome = self.revoke(caller, &name, reason).await.err().map(|e| e.to_string());
            results.push((name, outcome));
        }
        results
    }

    /// Delivers to the inventory what it has not heard yet: versions whose
    /// recording was cut short, and revocations. Returns how many were done.
    pub async fn sync_inventory_once(&self) -> Result<usize> {
        let system = Caller { actor: "system".to_owned(), request_id: String::new() };
        let mut done = 0;
        for record in self.store.unsynced(SYNC_BATCH).await? {
            if record.certificate_version.is_none() {
                match self.record_in_inventory(&system, record.clone()).await {
                    Ok(_) => {}
                    // The inventory will never take it (its certificate was
                    // deleted or changed meanwhile): stop offering it, so the
                    // records queued behind it are not held up for ever.
                    Err(IssuanceError::Domain(refusal)) => {
                        tracing::warn!(issued = %record.name(), %refusal, "the inventory refused a signed version");
                        self.store.set_certificate_version(&record.issuer_id, &record.serial, "").await?;
                    }
                    Err(e) => return Err(e),
                }
                done += 1;
                continue;
            }
            if let (Some(version), Some(revocation)) = (&record.certificate_version, record.revocation) {
                match self
                    .inventory
                    .record_revocation(&system, version, revocation.reason.as_str(), revocation.time)
                    .await
                {
                    Ok(()) | Err(InventoryError::NotFound(_) | InventoryError::Refused(_)) => {
                        // A deleted certificate, or a version the inventory
                        // never took, has nothing left to mark.
                        self.store.mark_revocation_synced(&record.issuer_id, &record.serial).await?;
                        done += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(done)
    }

    /// Runs until shutdown: inventory sync on demand and every few seconds,
    /// CRL re-signing before they go stale.
    pub async fn run_background(self, shutdown: Shutdown) {
        let mut backoff = Duration::from_millis(500);
        let mut crl_tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = self.sync_wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = crl_tick.tick() => {
                    if let Err(e) = self.refresh_all_crls().await {
                        tracing::warn!(error = %e, "re-signing CRLs failed; retrying in a minute");
                    }
                }
                _ = shutdown.clone().wait() => return,
            }
            match self.sync_inventory_once().await {
                Ok(n) => {
                    backoff = Duration::from_millis(500);
                    if n as i64 >= SYNC_BATCH {
                        self.sync_wake.notify_one();
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "inventory sync failed; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.clone().wait() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn refresh_all_crls(&self) -> Result<()> {
        let mut after: Option<String> = None;
        loop {
            let issuers = self.store.list_issuers(after.as_deref(), 100).await?;
            let Some(last) = issuers.last() else { return Ok(()) };
            after = Some(last.id.clone());
            for issuer in &issuers {
                let connector = self.connector(&issuer.id).await?;
                let Some(ca) = connector.local_ca() else { continue };
                let ids: Vec<String> = ca.authorities().iter().map(|a| a.record.id.clone()).collect();
                for id in ids {
                    self.refresh_crl(&issuer.id, &id, false).await?;
                }
            }
        }
    }
}
