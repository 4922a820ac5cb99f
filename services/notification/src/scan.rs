//! The singleton loops, run by the one replica that holds the
//! `notification-scan` lease: the expiry scan over the inventory, the
//! follower of the audit trail (revocations, failed jobs), and the daily
//! digests. Everything they record carries a dedup key, so a second leader
//! during a failover, a restart or a re-scan records nothing twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use certctl_common::shutdown::Shutdown;
use certctl_domain::UnixTime;

use crate::model::{Event, EventType, Notification, Severity, crossed_threshold, threshold_severity};
use crate::service::Notifications;
use crate::store::Store;
use crate::upstream::{AuditRecord, CertificateInfo, Upstreams};

pub const LEADER_NAME: &str = "notification-scan";
/// Certificates further than this from expiry are not read: no threshold is this far.
pub const HORIZON_SECS: i64 = 366 * 86_400;
const DAY: i64 = 86_400;
const AUDIT_CURSOR: &str = "audit";
const AUDIT_PAGE: i32 = 500;
/// What a digest covers.
pub const DIGEST_WINDOW_SECS: i64 = 30 * DAY;

/// What one scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub examined: usize,
    pub alerted: usize,
    pub resolved: usize,
}

fn days(secs: i64) -> i64 {
    secs.div_euclid(DAY)
}

fn label(c: &CertificateInfo) -> &str {
    if !c.display_name.is_empty() {
        &c.display_name
    } else if !c.common_name.is_empty() {
        &c.common_name
    } else {
        &c.name
    }
}

/// The event for a version that crossed `threshold` days.
pub fn expiry_event(c: &CertificateInfo, not_after: UnixTime, threshold: i64, now: UnixTime) -> Event {
    let left = days(not_after - now);
    let (event_type, title) = if now >= not_after {
        (EventType::Expired, format!("{} has expired", label(c)))
    } else {
        (EventType::Expiring, format!("{} expires in {} day{}", label(c), left, if left == 1 { "" } else { "s" }))
    };
    Event {
        event_type: Some(event_type),
        severity: Some(threshold_severity(threshold)),
        certificate: c.name.clone(),
        certificate_version: c.current_version.clone(),
        owner: c.owner.clone(),
        team: c.team.clone(),
        environment: c.environment.clone(),
        body: format!(
            "{} ({}) is valid until {}. This is the {}-day alert; it will be resolved when the certificate is renewed.",
            c.current_version,
            c.common_name,
            certctl_domain::rfc3339(not_after),
            threshold
        ),
        title,
        dedup_key: format!("expiry:{}:{threshold}d", c.current_version),
        alert_key: format!("certctl:expiry:{}", c.current_version),
        recipients: Vec::new(),
        details: serde_json::json!({ "threshold_days": threshold, "not_after": certctl_domain::rfc3339(not_after) }),
    }
}

fn is_expiry(n: &Notification) -> bool {
    n.dedup_key.starts_with("expiry:")
}

/// One pass over the inventory: an alert for each version that crossed a
/// threshold it has not been alerted for, and a resolve for each alert of a
/// version that is no longer its certificate's current one.
pub async fn scan_expiry<S: Store + ?Sized>(n: &Notifications<S>, up: &Upstreams) -> Result<ScanReport, String> {
    let now = n.clock.now();
    let mut report = ScanReport::default();
    let mut open: HashMap<String, Vec<Notification>> = HashMap::new();
    for alert in n.store.open_alerts().await.map_err(|e| e.to_string())?.into_iter().filter(is_expiry) {
        open.entry(alert.certificate.clone()).or_default().push(alert);
    }
    let mut seen = HashSet::new();
    let mut token = String::new();
    loop {
        let (page, next) = up.expiring(now + HORIZON_SECS, &token).await?;
        for c in &page {
            report.examined += 1;
            seen.insert(c.name.clone());
            report.resolved += resolve_stale(n, open.get(&c.name), Some(c)).await?;
            let Some(not_after) = c.not_after else { continue };
            if c.revoked || c.current_version.is_empty() {
                continue;
            }
            let thresholds = up.thresholds(&c.renewal_policy, now).await?;
            if let Some(threshold) = crossed_threshold(&thresholds, not_after, now)
                && n.publish(expiry_event(c, not_after, threshold, now)).await.map_err(|e| e.to_string())?.is_some()
            {
                report.alerted += 1;
            }
        }
        if next.is_empty() {
            break;
        }
        token = next;
    }
    // Alerts of certificates the pass did not see: renewed past the horizon,
    // or deleted.
    for (certificate, alerts) in &open {
        if !seen.contains(certificate) {
            let current = up.certificate(certificate).await?;
            report.resolved += resolve_stale(n, Some(alerts), current.as_ref()).await?;
        }
    }
    Ok(report)
}

async fn resolve_stale<S: Store + ?Sized>(
    n: &Notifications<S>,
    alerts: Option<&Vec<Notification>>,
    current: Option<&CertificateInfo>,
) -> Result<usize, String> {
    let mut resolved = 0;
    for alert in alerts.into_iter().flatten() {
        let still_current = current.is_some_and(|c| c.current_version == alert.certificate_version && !c.revoked);
        if !still_current {
            n.resolve(alert).await.map_err(|e| e.to_string())?;
            resolved += 1;
        }
    }
    Ok(resolved)
}

/// The event an audit record stands for, if notifications care about it.
pub fn audit_event(record: &AuditRecord) -> Option<Event> {
    let text = |key: &str| record.details.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let mut event = Event {
        dedup_key: format!("audit:{}", record.sequence),
        details: serde_json::json!({ "audit_event": format!("auditEvents/{}", record.sequence), "details": record.details }),
        ..Event::default()
    };
    match record.action.as_str() {
        "inventory.RecordRevocation" => {
            let certificate = record.resource.split("/versions/").next().unwrap_or_default().to_owned();
            event.event_type = Some(EventType::Revoked);
            event.severity = Some(Severity::Warning);
            event.title = format!("{} was revoked", record.resource);
            event.body = format!("The CA revoked {} (reason: {}).", record.resource, text("reason"));
            event.certificate_version = record.resource.clone();
            event.certificate = certificate;
        }
        "scheduler.JobFailed" => {
            let kind = text("kind");
            let (event_type, what) = match kind.as_str() {
                "issuance" | "renewal" => (EventType::RenewalFailed, "renewal"),
                "deployment" => (EventType::DeploymentFailed, "deployment"),
                "validation" => (EventType::VerificationMismatch, "verification"),
                _ => return None,
            };
            event.event_type = Some(event_type);
            event.severity = Some(Severity::Error);
            event.certificate = text("certificate");
            event.title = format!("The {what} of {} failed", event.certificate);
            event.body = format!(
                "{} failed for good after {} attempt(s): {} ({}).",
                record.resource,
                record.details.get("attempts").and_then(|v| v.as_i64()).unwrap_or_default(),
                text("error_message"),
                text("error_code"),
            );
        }
        _ => return None,
    }
    Some(event)
}

/// Reads the audit trail after the stored cursor and records an event for
/// each record that stands for one. A fresh installation starts at the
/// trail's head: history is not replayed as news.
pub async fn follow_audit<S: Store + ?Sized>(n: &Notifications<S>, up: &Upstreams) -> Result<usize, String> {
    let store_err = |e: certctl_common::StoreError| e.to_string();
    let mut cursor = match n.store.cursor(AUDIT_CURSOR).await.map_err(store_err)? {
        Some(text) => text.parse::<i64>().map_err(|_| format!("the stored audit cursor `{text}` is not a number"))?,
        None => {
            let head = up.audit_head().await?;
            n.store.set_cursor(AUDIT_CURSOR, &head.to_string()).await.map_err(store_err)?;
            return Ok(0);
        }
    };
    let mut recorded = 0;
    loop {
        let page = up.audit_after(cursor, AUDIT_PAGE).await?;
        for record in &page {
            if let Some(mut event) = audit_event(record) {
                if !event.certificate.is_empty()
                    && let Some(c) = up.certificate(&event.certificate).await?
                {
                    event.owner = c.owner;
                    event.team = c.team;
                    event.environment = c.environment;
                }
                if n.publish(event).await.map_err(|e| e.to_string())?.is_some() {
                    recorded += 1;
                }
            }
            cursor = record.sequence;
        }
        // Saved after the page's events are recorded: a crash in between
        // re-reads them, and their dedup keys drop the repeats.
        if let Some(last) = page.last() {
            n.store.set_cursor(AUDIT_CURSOR, &last.sequence.to_string()).await.map_err(store_err)?;
        }
        if page.len() < AUDIT_PAGE as usize {
            return Ok(recorded);
        }
    }
}

/// Once a day (UTC), from `hour` on: an email to every owner and team with
/// an address, listing their certificates that expire in the next 30 days,
/// through the email channels that send digests.
pub async fn send_digests<S: Store + ?Sized>(n: &Notifications<S>, up: &Upstreams, hour: u32) -> Result<usize, String> {
    let now = n.clock.now();
    if now.rem_euclid(DAY) < i64::from(hour) * 3_600 {
        return Ok(0);
    }
    let mut channels = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = n.store.list_channels(Some("email"), after.as_deref(), 500).await.map_err(|e| e.to_string())?;
        for c in &page {
            if let crate::channels::ChannelConfig::Email(email) = &c.config
                && email.send_digests
                && !c.disabled
            {
                channels.push(c.id.clone());
            }
        }
        if page.len() < 500 {
            break;
        }
        after = page.last().map(|c| c.id.clone());
    }
    if channels.is_empty() {
        return Ok(0);
    }
    let mut by_recipient: BTreeMap<String, Vec<(CertificateInfo, UnixTime)>> = BTreeMap::new();
    let mut token = String::new();
    loop {
        let (page, next) = up.expiring(now + DIGEST_WINDOW_SECS, &token).await?;
        for c in page {
            let Some(not_after) = c.not_after.filter(|_| !c.revoked && !c.current_version.is_empty()) else { continue };
            for recipient in [&c.owner, &c.team].into_iter().filter(|r| !r.is_empty()) {
                by_recipient.entry(recipient.clone()).or_default().push((c.clone(), not_after));
            }
        }
        if next.is_empty() {
            break;
        }
        token = next;
    }
    let date = certctl_domain::rfc3339(now - now.rem_euclid(DAY));
    let date = date.split('T').next().unwrap_or_default().to_owned();
    let mut sent = 0;
    for (recipient, certificates) in by_recipient {
        let address = up.address(&recipient).await?;
        if address.is_empty() {
            continue;
        }
        let lines: Vec<String> = certificates
            .iter()
            .map(|(c, not_after)| {
                let left = days(not_after - now);
                let when = if left < 0 { "expired".to_owned() } else { format!("in {left} days") };
                format!("- {} ({}): expires {} ({when})", label(c), c.name, certctl_domain::rfc3339(*not_after))
            })
            .collect();
        let event = Event {
            event_type: Some(EventType::Digest),
            severity: Some(Severity::Info),
            title: format!("{} certificate(s) expire in the next 30 days", certificates.len()),
            body: format!("Certificates of {recipient} that expire by {}:\n\n{}", date, lines.join("\n")),
            dedup_key: format!("digest:{recipient}:{date}"),
            recipients: vec![address],
            details: serde_json::json!({ "recipient": recipient, "date": date, "count": certificates.len() }),
            ..Event::default()
        };
        if n.record(event, channels.clone(), Vec::new()).await.map_err(|e| e.to_string())?.is_some() {
            sent += 1;
        }
    }
    Ok(sent)
}

/// How the singleton loops run.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub interval: Duration,
    /// The UTC hour from which the daily digest goes out.
    pub digest_hour: u32,
    /// This replica's name in the leader lease.
    pub holder: String,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            digest_hour: 8,
            holder: format!("notification-{:08x}", rand::random::<u32>()),
        }
    }
}

/// One round of every singleton loop.
pub async fn round<S: Store + ?Sized>(n: &Notifications<S>, up: &Upstreams, digest_hour: u32) {
    match scan_expiry(n, up).await {
        Ok(r) if r.alerted + r.resolved > 0 => {
            tracing::info!(examined = r.examined, alerted = r.alerted, resolved = r.resolved, "expiry scan")
        }
        Ok(_) => {}
        Err(reason) => tracing::warn!(%reason, "the expiry scan failed; trying again next round"),
    }
    if let Err(reason) = follow_audit(n, up).await {
        tracing::warn!(%reason, "following the audit trail failed; trying again next round");
    }
    if let Err(reason) = send_digests(n, up, digest_hour).await {
        tracing::warn!(%reason, "the digests failed; trying again next round");
    }
}

/// Runs the rounds every `interval` while this replica holds the lease.
pub async fn run<S: Store + ?Sized>(n: Arc<Notifications<S>>, up: Upstreams, config: ScanConfig, shutdown: Shutdown) {
    let ttl = (config.interval.as_secs() as i64).max(1) * 3;
    loop {
        match n.store.try_lead(LEADER_NAME, &config.holder, n.clock.now(), ttl).await {
            Ok(true) => round(&n, &up, config.digest_hour).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot take part in the notification-scan election"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.interval) => {}
            _ = shutdown.clone().wait() => {
                if let Err(e) = n.store.release(LEADER_NAME, &config.holder).await {
                    tracing::warn!(error = %e, "cannot give the notification-scan lease back");
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_records_become_events() {
        let failed = AuditRecord {
            sequence: 42,
            action: "scheduler.JobFailed".into(),
            resource: "jobs/abc".into(),
            details: serde_json::json!({"kind": "renewal", "certificate": "certificates/web", "attempts": 5,
                "error_code": "ISSUER_UNAVAILABLE", "error_message": "the CA is down"}),
        };
        let event = audit_event(&failed).expect("a renewal failure");
        assert_eq!(event.event_type, Some(EventType::RenewalFailed));
        assert_eq!(event.certificate, "certificates/web");
        assert_eq!(event.dedup_key, "audit:42");
        assert!(event.body.contains("the CA is down"), "{}", event.body);
        let revoked = AuditRecord {
            sequence: 43,
            action: "inventory.RecordRevocation".into(),
            resource: "certificates/web/versions/2".into(),
            details: serde_json::json!({"reason": "keyCompromise"}),
        };
        let event = audit_event(&revoked).expect("a revocation");
        assert_eq!((event.event_type, event.certificate.as_str()), (Some(EventType::Revoked), "certificates/web"));
        let other = AuditRecord { action: "inventory.CreateOwner".into(), ..revoked };
        assert_eq!(audit_event(&other), None);
    }
}
