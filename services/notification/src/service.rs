//! The core: channels with sealed secrets, routing rules, and recording an
//! event as a notification with its deliveries and inbox entries. The gRPC
//! edge, the delivery worker and the scan loops all go through here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use certctl_common::caller::Caller;
use certctl_common::secret::MasterKey;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::{DomainError, UnixTime};
use tokio::sync::Notify;

use crate::channels::{self, ChannelConfig, Message, Notifier, SendError};
use crate::error::{NotificationError, Result};
use crate::http::HttpClient;
use crate::model::{
    Action, Delivery, DeliveryState, Event, EventType, Notification, RetryPolicy, RoutingRule, Severity,
};
use crate::store::{Store, StoredChannel};

/// Where "now" comes from: the wall clock, or a hand-set one in tests.
#[derive(Clone)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands still at `start` until `set`.
    pub fn manual(start: UnixTime) -> Self {
        Self(Some(Arc::new(AtomicI64::new(start))))
    }

    pub fn now(&self) -> UnixTime {
        match &self.0 {
            None => certctl_domain::now(),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock (no effect on the wall clock).
    pub fn set(&self, now: UnixTime) {
        if let Some(t) = &self.0 {
            t.store(now, Ordering::SeqCst);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", if self.0.is_some() { "manual" } else { "system" })
    }
}

/// What a test send reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub delivered: bool,
    pub status: u16,
    pub excerpt: String,
    pub error: String,
}

/// The notification service's core, shared by its gRPC edge and loops.
pub struct Notifications<S: Store + ?Sized> {
    pub(crate) store: Arc<S>,
    master_key: MasterKey,
    pub(crate) http: HttpClient,
    pub(crate) clock: Clock,
    pub(crate) retry: RetryPolicy,
    /// Wakes the delivery worker when this replica queued something.
    pub(crate) wake: Arc<Notify>,
    /// Wakes the audit relay.
    pub(crate) relay_wake: Arc<Notify>,
}

fn secret_context(id: &str) -> String {
    format!("notification/channels/{id}")
}

pub(crate) fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl<S: Store + ?Sized> Notifications<S> {
    pub fn new(store: Arc<S>, master_key: MasterKey, http: HttpClient, clock: Clock, retry: RetryPolicy) -> Self {
        Self {
            store,
            master_key,
            http,
            clock,
            retry,
            wake: Arc::new(Notify::new()),
            relay_wake: Arc::new(Notify::new()),
        }
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn audit(&self, caller: &Caller, action: &str, resource: &str, details: serde_json::Value) -> NewAuditEvent {
        NewAuditEvent {
            actor: if caller.actor.is_empty() { "anonymous".into() } else { caller.actor.clone() },
            action: format!("{}.{action}", crate::SERVICE),
            resource: resource.to_owned(),
            event_time_micros: self.clock.now().saturating_mul(1_000_000),
            request_id: caller.request_id.clone(),
            details,
            source: crate::SERVICE.into(),
            source_id: format!("{:032x}", rand::random::<u128>()),
        }
    }

    fn committed(&self) {
        self.relay_wake.notify_one();
    }

    fn seal(&self, id: &str, secrets: &BTreeMap<String, String>) -> Option<String> {
        if secrets.is_empty() {
            return None;
        }
        let plaintext = serde_json::to_vec(secrets).expect("a string map serialises");
        Some(self.master_key.seal(&secret_context(id), &plaintext))
    }

    fn open(&self, channel: &StoredChannel) -> Result<BTreeMap<String, String>> {
        let Some(sealed) = &channel.sealed_secret else { return Ok(BTreeMap::new()) };
        let fail = |reason: String| NotificationError::Secret { channel: channel.name(), reason };
        let plaintext = self.master_key.open(&secret_context(&channel.id), sealed).map_err(|e| fail(e.to_string()))?;
        serde_json::from_slice(&plaintext).map_err(|e| fail(e.to_string()))
    }

    /// The channel's settings with its secrets, ready to connect.
    pub fn full_config(&self, channel: &StoredChannel) -> Result<ChannelConfig> {
        let mut config = channel.config.clone();
        config.put_secrets(&self.open(channel)?);
        Ok(config)
    }

    pub fn connect(&self, channel: &StoredChannel) -> Result<Box<dyn Notifier>> {
        Ok(channels::connect(self.full_config(channel)?, &self.http))
    }

    pub async fn create_channel(
        &self,
        caller: &Caller,
        id: &str,
        display_name: String,
        mut config: ChannelConfig,
        disabled: bool,
        request_id: &str,
    ) -> Result<StoredChannel> {
        certctl_domain::name::validate_id("channel_id", id)?;
        config.validate("channel")?;
        let secrets = config.take_secrets();
        let now = self.clock.now();
        let channel = StoredChannel {
            id: id.to_owned(),
            display_name,
            sealed_secret: self.seal(id, &secrets),
            config,
            disabled,
            create_time: now,
            update_time: now,
        };
        let event =
            self.audit(caller, "CreateChannel", &channel.name(), serde_json::json!({"kind": channel.config.kind()}));
        let stored = self.store.insert_channel(&channel, request_id, event).await?;
        self.committed();
        Ok(stored)
    }

    pub async fn get_channel(&self, name: &str) -> Result<StoredChannel> {
        let id = parse_name("name", "channels/", name)?;
        self.store.get_channel(id).await?.ok_or_else(|| DomainError::not_found(name).into())
    }

    /// Applies the fields in `mask` (`display_name`, `disabled`, or the
    /// config's kind) from `patch`. Secrets left empty keep their value.
    pub async fn update_channel(
        &self,
        caller: &Caller,
        name: &str,
        mask: &[String],
        display_name: String,
        config: Option<ChannelConfig>,
        disabled: bool,
    ) -> Result<StoredChannel> {
        let mut channel = self.get_channel(name).await?;
        if mask.is_empty() {
            return Err(DomainError::invalid("update_mask", "name the fields to change").into());
        }
        for field in mask {
            match field.as_str() {
                "display_name" => channel.display_name.clone_from(&display_name),
                "disabled" => channel.disabled = disabled,
                kind if ChannelConfig::KINDS.contains(&kind) => {
                    let Some(mut new) = config.clone().filter(|c| c.kind() == kind) else {
                        return Err(DomainError::invalid(format!("channel.{kind}"), "the mask names it: set it").into());
                    };
                    let old = if new.kind() == channel.config.kind() { self.open(&channel)? } else { BTreeMap::new() };
                    new.put_secrets(&old);
                    new.validate("channel")?;
                    let secrets = new.take_secrets();
                    channel.sealed_secret = self.seal(&channel.id, &secrets);
                    channel.config = new;
                }
                other => {
                    return Err(DomainError::invalid("update_mask", format!("`{other}` cannot be updated")).into());
                }
            }
        }
        channel.update_time = self.clock.now();
        let event = self.audit(caller, "UpdateChannel", name, serde_json::json!({"update_mask": mask}));
        self.store.update_channel(&channel, event).await?;
        self.committed();
        Ok(channel)
    }

    pub async fn delete_channel(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = parse_name("name", "channels/", name)?;
        let event = self.audit(caller, "DeleteChannel", name, serde_json::Value::Null);
        self.store.delete_channel(id, event).await?;
        self.committed();
        Ok(())
    }

    /// Sends a test message through the channel now and reports its answer.
    pub async fn test_channel(&self, name: &str) -> Result<TestOutcome> {
        let channel = self.get_channel(name).await?;
        let notifier = self.connect(&channel)?;
        Ok(match notifier.send(&Message::test(self.clock.now())).await {
            Ok(receipt) => {
                TestOutcome { delivered: true, status: receipt.status, excerpt: receipt.excerpt, error: String::new() }
            }
            Err(SendError { status, excerpt, message, .. }) => {
                TestOutcome { delivered: false, status, excerpt, error: message }
            }
        })
    }

    async fn check_rule(&self, rule: &RoutingRule) -> Result<()> {
        rule.validate()?;
        let mut v = certctl_domain::error::Violations::new();
        for (i, channel) in rule.channels.iter().enumerate() {
            if self.store.get_channel(channel).await?.is_none() {
                v.add(format!("routing_rule.channels[{i}]"), format!("channels/{channel} does not exist"));
            }
        }
        Ok(v.into_result()?)
    }

    pub async fn create_rule(
        &self,
        caller: &Caller,
        id: &str,
        mut rule: RoutingRule,
        request_id: &str,
    ) -> Result<RoutingRule> {
        certctl_domain::name::validate_id("routing_rule_id", id)?;
        rule.id = id.to_owned();
        self.check_rule(&rule).await?;
        let now = self.clock.now();
        rule.create_time = now;
        rule.update_time = now;
        let event = self.audit(caller, "CreateRoutingRule", &rule.name(), serde_json::Value::Null);
        let stored = self.store.insert_rule(&rule, request_id, event).await?;
        self.committed();
        Ok(stored)
    }

    pub async fn get_rule(&self, name: &str) -> Result<RoutingRule> {
        let id = parse_name("name", "routingRules/", name)?;
        self.store.get_rule(id).await?.ok_or_else(|| DomainError::not_found(name).into())
    }

    pub async fn update_rule(
        &self,
        caller: &Caller,
        name: &str,
        mask: &[String],
        patch: RoutingRule,
    ) -> Result<RoutingRule> {
        let mut rule = self.get_rule(name).await?;
        if mask.is_empty() {
            return Err(DomainError::invalid("update_mask", "name the fields to change").into());
        }
        for field in mask {
            match field.as_str() {
                "display_name" => rule.display_name.clone_from(&patch.display_name),
                "channels" => rule.channels.clone_from(&patch.channels),
                "event_types" => rule.event_types.clone_from(&patch.event_types),
                "min_severity" => rule.min_severity = patch.min_severity,
                "owners" => rule.owners.clone_from(&patch.owners),
                "teams" => rule.teams.clone_from(&patch.teams),
                "environments" => rule.environments.clone_from(&patch.environments),
                other => {
                    return Err(DomainError::invalid("update_mask", format!("`{other}` cannot be updated")).into());
                }
            }
        }
        self.check_rule(&rule).await?;
        rule.update_time = self.clock.now();
        let event = self.audit(caller, "UpdateRoutingRule", name, serde_json::json!({"update_mask": mask}));
        self.store.update_rule(&rule, event).await?;
        self.committed();
        Ok(rule)
    }

    pub async fn delete_rule(&self, caller: &Caller, name: &str) -> Result<()> {
        let id = parse_name("name", "routingRules/", name)?;
        let event = self.audit(caller, "DeleteRoutingRule", name, serde_json::Value::Null);
        self.store.delete_rule(id, event).await?;
        self.committed();
        Ok(())
    }

    async fn all_rules(&self) -> Result<Vec<RoutingRule>> {
        let mut rules = Vec::new();
        loop {
            let page = self.store.list_rules(rules.last().map(|r: &RoutingRule| r.id.as_str()), 500).await?;
            let done = page.len() < 500;
            rules.extend(page);
            if done {
                return Ok(rules);
            }
        }
    }

    /// Records `event` once (by its dedup key) with a delivery to each
    /// channel the routing rules pick and an inbox entry for its owner and
    /// team. Returns the notification when this call recorded it.
    pub async fn publish(&self, event: Event) -> Result<Option<Notification>> {
        let channels = crate::model::route(&self.all_rules().await?, &event);
        let inbox: Vec<String> = [&event.owner, &event.team].into_iter().filter(|r| !r.is_empty()).cloned().collect();
        self.record(event, channels, inbox).await
    }

    /// Records `event` for exactly these channels and inbox recipients.
    pub async fn record(
        &self,
        event: Event,
        channel_ids: Vec<String>,
        inbox: Vec<String>,
    ) -> Result<Option<Notification>> {
        let now = self.clock.now();
        let notification = Notification {
            id: random_id(),
            event_type: event.event_type.unwrap_or(EventType::Expiring),
            severity: event.severity.unwrap_or(Severity::Info),
            certificate: event.certificate,
            certificate_version: event.certificate_version,
            owner: event.owner,
            team: event.team,
            environment: event.environment,
            title: event.title,
            body: event.body,
            dedup_key: event.dedup_key,
            alert_key: event.alert_key,
            recipients: event.recipients,
            details: event.details,
            create_time: now,
            resolve_time: None,
        };
        let mut deliveries = Vec::new();
        for id in channel_ids {
            match self.store.get_channel(&id).await? {
                Some(channel) if !channel.disabled => deliveries.push(Delivery {
                    id: random_id(),
                    notification_id: notification.id.clone(),
                    channel_id: id,
                    action: Action::Trigger,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    max_attempts: self.retry.max_attempts,
                    next_attempt_at: Some(now),
                    last_error: String::new(),
                    response_status: 0,
                    response_excerpt: String::new(),
                    create_time: now,
                    update_time: now,
                }),
                _ => {}
            }
        }
        if !self.store.record(&notification, &deliveries, &inbox).await? {
            return Ok(None);
        }
        tracing::info!(
            notification = %notification.name(),
            event = notification.event_type.as_str(),
            deliveries = deliveries.len(),
            "recorded a notification"
        );
        self.wake.notify_one();
        Ok(Some(notification))
    }

    /// Marks a notification resolved and queues the resolves (PagerDuty,
    /// OpsGenie) of the channels its trigger reached.
    pub async fn resolve(&self, notification: &Notification) -> Result<usize> {
        let resolvers: Vec<&str> = ["pagerduty", "opsgenie"].into();
        let queued =
            self.store.resolve(&notification.id, self.clock.now(), &resolvers, self.retry.max_attempts).await?;
        tracing::info!(notification = %notification.name(), resolves = queued, "resolved a notification");
        self.wake.notify_one();
        Ok(queued)
    }

    pub async fn retry_delivery(&self, caller: &Caller, name: &str) -> Result<Delivery> {
        let (notification, delivery) = parse_delivery_name("name", name)?;
        let event = self.audit(caller, "RetryDelivery", name, serde_json::Value::Null);
        let delivery = self.store.retry_delivery(notification, delivery, self.clock.now(), event).await?;
        self.committed();
        self.wake.notify_one();
        Ok(delivery)
    }
}

/// The id in `{prefix}{id}`, or INVALID_ARGUMENT naming `field`.
pub fn parse_name<'a>(field: &str, prefix: &str, name: &'a str) -> Result<&'a str> {
    match name.strip_prefix(prefix) {
        Some(id) if !id.is_empty() && !id.contains('/') => Ok(id),
        _ => Err(DomainError::invalid(field, format!("must be `{prefix}{{id}}`")).into()),
    }
}

/// `(notification id, delivery id)` of `notifications/{n}/deliveries/{d}`.
pub fn parse_delivery_name<'a>(field: &str, name: &'a str) -> Result<(&'a str, &'a str)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["notifications", n, "deliveries", d] if !n.is_empty() && !d.is_empty() => Ok((n, d)),
        _ => Err(DomainError::invalid(field, "must be `notifications/{notification}/deliveries/{delivery}`").into()),
    }
}

/// `(recipient, item id)` of `owners/{o}/inboxItems/{i}` or `teams/{t}/inboxItems/{i}`.
pub fn parse_inbox_name<'a>(field: &str, name: &'a str) -> Result<(String, &'a str)> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [kind @ ("owners" | "teams"), who, "inboxItems", item] if !who.is_empty() && !item.is_empty() => {
            Ok((format!("{kind}/{who}"), item))
        }
        _ => {
            Err(DomainError::invalid(field, "must be `owners/{owner}/inboxItems/{item}` or `teams/{team}/...`").into())
        }
    }
}

/// Checks an inbox parent, `owners/{owner}` or `teams/{team}`.
pub fn parse_recipient(field: &str, name: &str) -> Result<String> {
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        ["owners" | "teams", who] if !who.is_empty() => Ok(name.to_owned()),
        _ => Err(DomainError::invalid(field, "must be `owners/{owner}` or `teams/{team}`").into()),
    }
}
