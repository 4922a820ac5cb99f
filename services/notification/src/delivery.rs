//! The delivery worker: claims due deliveries, sends each through its
//! channel, and records the outcome: delivered, pending again after the
//! retry policy's backoff, or failed (a permanent refusal, or no attempts
//! left). Deliveries live in the database, so a restart resumes them; one
//! whose worker died mid-attempt is due again when its lease ends.

use std::sync::Arc;
use std::time::Duration;

use certctl_common::shutdown::Shutdown;

use crate::channels::Message;
use crate::model::{Action, Notification};
use crate::service::Notifications;
use crate::store::{Claimed, Outcome, Store};

/// How long an attempt holds its delivery before another worker may retry it.
pub const LEASE_SECS: i64 = 120;
const BATCH: i64 = 32;

/// The message a delivery sends.
pub fn message(notification: &Notification, delivery_id: &str, action: Action) -> Message {
    Message {
        action,
        event_type: notification.event_type,
        severity: notification.severity,
        title: notification.title.clone(),
        body: notification.body.clone(),
        certificate: notification.certificate.clone(),
        certificate_version: notification.certificate_version.clone(),
        owner: notification.owner.clone(),
        team: notification.team.clone(),
        environment: notification.environment.clone(),
        alert_key: if notification.alert_key.is_empty() {
            notification.dedup_key.clone()
        } else {
            notification.alert_key.clone()
        },
        idempotency_key: format!("{}/{delivery_id}", notification.name()),
        event_time: notification.create_time,
        recipients: notification.recipients.clone(),
        details: notification.details.clone(),
    }
}

/// Sends one claimed delivery and records what happened.
pub async fn attempt<S: Store + ?Sized>(n: &Notifications<S>, claimed: Claimed) -> Outcome {
    let Claimed { delivery, token, notification, channel } = claimed;
    let outcome = match channel {
        None => Outcome::Failed { error: "the channel was deleted".into(), status: 0, excerpt: String::new() },
        Some(c) if c.disabled => {
            Outcome::Failed { error: "the channel is disabled".into(), status: 0, excerpt: String::new() }
        }
        Some(c) => match n.connect(&c) {
            Err(e) => Outcome::Failed { error: e.to_string(), status: 0, excerpt: String::new() },
            Ok(notifier) => {
                let message = message(&notification, &delivery.id, delivery.action);
                match notifier.send(&message).await {
                    Ok(receipt) => Outcome::Delivered { status: i32::from(receipt.status), excerpt: receipt.excerpt },
                    Err(e) if e.retryable && delivery.attempts < delivery.max_attempts => Outcome::Retry {
                        next_attempt_at: n.clock.now() + n.retry.backoff(delivery.attempts, e.retry_after),
                        error: e.message,
                        status: i32::from(e.status),
                        excerpt: e.excerpt,
                    },
                    Err(e) => Outcome::Failed { error: e.message, status: i32::from(e.status), excerpt: e.excerpt },
                }
            }
        },
    };
    match &outcome {
        Outcome::Delivered { .. } => tracing::info!(delivery = %delivery.name(), "delivered"),
        Outcome::Retry { error, next_attempt_at, .. } => {
            tracing::warn!(delivery = %delivery.name(), %error, next_attempt_at, "delivery failed; will retry")
        }
        Outcome::Failed { error, .. } => {
            tracing::warn!(delivery = %delivery.name(), %error, "delivery failed for good")
        }
    }
    match n.store.finish_delivery(&delivery.id, &token, &outcome, n.clock.now()).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(delivery = %delivery.name(), "the delivery's lease was lost; outcome dropped"),
        Err(e) => tracing::warn!(delivery = %delivery.name(), error = %e, "cannot record the delivery's outcome"),
    }
    outcome
}

/// Claims and sends whatever is due now; returns how many were attempted.
pub async fn run_once<S: Store + ?Sized>(n: &Notifications<S>) -> Result<usize, certctl_common::StoreError> {
    let claimed = n.store.claim_deliveries(n.clock.now(), LEASE_SECS, BATCH).await?;
    let count = claimed.len();
    futures::future::join_all(claimed.into_iter().map(|c| attempt(n, c))).await;
    Ok(count)
}

/// Runs the worker until shutdown, polling every `poll` for work that
/// another replica queued or a retry that came due.
pub async fn run<S: Store + ?Sized>(n: Arc<Notifications<S>>, poll: Duration, shutdown: Shutdown) {
    loop {
        if shutdown.is_triggered() {
            return;
        }
        let busy = match run_once(&n).await {
            Ok(count) => count as i64 == BATCH,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim deliveries");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = n.wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.clone().wait() => return,
        }
    }
}
