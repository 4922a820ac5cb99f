//! The gRPC edge of the notification service: converts protobuf to the
//! service's types, calls `Notifications`, converts back. Listings are
//! keyset pages with tokens bound to their query (`certctl_domain::page`).

use std::sync::Arc;

use certctl_common::caller::Caller;
use certctl_domain::{DomainError, page};
use certctl_proto::notification::{self as pb, notification_service_server::NotificationService};
use tonic::{Request, Response, Status};

use crate::channels::{ChannelConfig, email, opsgenie, pagerduty, slack, teams, webhook};
use crate::model::{Delivery, DeliveryState, EventType, InboxItem, Notification, RoutingRule, Severity};
use crate::service::{Notifications, parse_inbox_name, parse_name, parse_recipient};
use crate::store::{DeliveryFilter, InboxFilter, NotificationFilter, Store, StoredChannel};

type R<T> = Result<Response<T>, Status>;

fn invalid(field: &str, message: impl Into<String>) -> Status {
    certctl_common::status_from_domain(DomainError::invalid(field, message))
}

fn ts(t: i64) -> Option<pbjson_types::Timestamp> {
    certctl_proto::timestamp(t)
}

pub fn event_type_to_pb(t: EventType) -> i32 {
    (match t {
        EventType::Expiring => pb::EventType::Expiring,
        EventType::Expired => pb::EventType::Expired,
        EventType::RenewalFailed => pb::EventType::RenewalFailed,
        EventType::DeploymentFailed => pb::EventType::DeploymentFailed,
        EventType::VerificationMismatch => pb::EventType::VerificationMismatch,
        EventType::PolicyViolation => pb::EventType::PolicyViolation,
        EventType::Revoked => pb::EventType::Revoked,
        EventType::AgentOffline => pb::EventType::AgentOffline,
        EventType::Digest => pb::EventType::Digest,
    }) as i32
}

fn event_type_from_pb(field: &str, value: i32) -> Result<Option<EventType>, Status> {
    Ok(match pb::EventType::try_from(value) {
        Ok(pb::EventType::Unspecified) => None,
        Ok(pb::EventType::Expiring) => Some(EventType::Expiring),
        Ok(pb::EventType::Expired) => Some(EventType::Expired),
        Ok(pb::EventType::RenewalFailed) => Some(EventType::RenewalFailed),
        Ok(pb::EventType::DeploymentFailed) => Some(EventType::DeploymentFailed),
        Ok(pb::EventType::VerificationMismatch) => Some(EventType::VerificationMismatch),
        Ok(pb::EventType::PolicyViolation) => Some(EventType::PolicyViolation),
        Ok(pb::EventType::Revoked) => Some(EventType::Revoked),
        Ok(pb::EventType::AgentOffline) => Some(EventType::AgentOffline),
        Ok(pb::EventType::Digest) => Some(EventType::Digest),
        Err(_) => return Err(invalid(field, format!("{value} is not an event type"))),
    })
}

fn severity_to_pb(s: Severity) -> i32 {
    (match s {
        Severity::Info => pb::Severity::Info,
        Severity::Warning => pb::Severity::Warning,
        Severity::Error => pb::Severity::Error,
        Severity::Critical => pb::Severity::Critical,
    }) as i32
}

fn severity_from_pb(field: &str, value: i32) -> Result<Option<Severity>, Status> {
    Ok(match pb::Severity::try_from(value) {
        Ok(pb::Severity::Unspecified) => None,
        Ok(pb::Severity::Info) => Some(Severity::Info),
        Ok(pb::Severity::Warning) => Some(Severity::Warning),
        Ok(pb::Severity::Error) => Some(Severity::Error),
        Ok(pb::Severity::Critical) => Some(Severity::Critical),
        Err(_) => return Err(invalid(field, format!("{value} is not a severity"))),
    })
}

fn port(value: i32) -> Result<u16, Status> {
    u16::try_from(value).map_err(|_| invalid("channel.email.smtp_port", "must be 0 to 65535"))
}

fn config_from_pb(config: Option<pb::channel::Config>) -> Result<Option<ChannelConfig>, Status> {
    use pb::channel::Config;
    Ok(Some(match config {
        None => return Ok(None),
        Some(Config::Email(c)) => ChannelConfig::Email(email::EmailConfig {
            smtp_host: c.smtp_host,
            smtp_port: port(c.smtp_port)?,
            security: match pb::SmtpSecurity::try_from(c.security) {
                Ok(pb::SmtpSecurity::Unspecified | pb::SmtpSecurity::Starttls) => email::Security::Starttls,
                Ok(pb::SmtpSecurity::ImplicitTls) => email::Security::ImplicitTls,
                Ok(pb::SmtpSecurity::None) => email::Security::None,
                Err(_) => return Err(invalid("channel.email.security", "not an SMTP security mode")),
            },
            username: c.username,
            password: c.password,
            from_address: c.from_address,
            to_addresses: c.to_addresses,
            send_digests: c.send_digests,
        }),
        Some(Config::Webhook(c)) => {
            ChannelConfig::Webhook(webhook::WebhookConfig { url: c.url, signing_secret: c.signing_secret })
        }
        Some(Config::Slack(c)) => ChannelConfig::Slack(slack::SlackConfig { webhook_url: c.webhook_url }),
        Some(Config::Teams(c)) => ChannelConfig::Teams(teams::TeamsConfig { webhook_url: c.webhook_url }),
        Some(Config::Pagerduty(c)) => ChannelConfig::Pagerduty(pagerduty::PagerDutyConfig {
            routing_key: c.routing_key,
            events_url: c.events_url,
        }),
        Some(Config::Opsgenie(c)) => {
            ChannelConfig::Opsgenie(opsgenie::OpsgenieConfig { api_key: c.api_key, api_url: c.api_url })
        }
    }))
}

/// Secrets never leave: the stored config has none, and `has_secret` says
/// whether one is sealed.
pub fn channel_to_pb(c: StoredChannel) -> pb::Channel {
    use pb::channel::Config;
    let config = match c.config {
        ChannelConfig::Email(e) => Config::Email(pb::EmailConfig {
            smtp_host: e.smtp_host,
            smtp_port: i32::from(e.smtp_port),
            security: (match e.security {
                email::Security::Starttls => pb::SmtpSecurity::Starttls,
                email::Security::ImplicitTls => pb::SmtpSecurity::ImplicitTls,
                email::Security::None => pb::SmtpSecurity::None,
            }) as i32,
            username: e.username,
            password: String::new(),
            from_address: e.from_address,
            to_addresses: e.to_addresses,
            send_digests: e.send_digests,
        }),
        ChannelConfig::Webhook(w) => Config::Webhook(pb::WebhookConfig { url: w.url, signing_secret: String::new() }),
        ChannelConfig::Slack(_) => Config::Slack(pb::SlackConfig::default()),
        ChannelConfig::Teams(_) => Config::Teams(pb::TeamsConfig::default()),
        ChannelConfig::Pagerduty(p) => {
            Config::Pagerduty(pb::PagerDutyConfig { routing_key: String::new(), events_url: p.events_url })
        }
        ChannelConfig::Opsgenie(o) => {
            Config::Opsgenie(pb::OpsgenieConfig { api_key: String::new(), api_url: o.api_url })
        }
    };
    pb::Channel {
        name: format!("channels/{}", c.id),
        display_name: c.display_name,
        config: Some(config),
        disabled: c.disabled,
        has_secret: c.sealed_secret.is_some(),
        create_time: ts(c.create_time),
        update_time: ts(c.update_time),
    }
}

fn rule_from_pb(r: pb::RoutingRule) -> Result<RoutingRule, Status> {
    let mut channels = Vec::with_capacity(r.channels.len());
    for (i, name) in r.channels.iter().enumerate() {
        channels.push(parse_name(&format!("routing_rule.channels[{i}]"), "channels/", name)?.to_owned());
    }
    let mut event_types = Vec::new();
    for (i, value) in r.event_types.iter().enumerate() {
        match event_type_from_pb(&format!("routing_rule.event_types[{i}]"), *value)? {
            Some(t) => event_types.push(t),
            None => return Err(invalid(&format!("routing_rule.event_types[{i}]"), "must not be unspecified")),
        }
    }
    Ok(RoutingRule {
        id: String::new(),
        display_name: r.display_name,
        channels,
        event_types,
        min_severity: severity_from_pb("routing_rule.min_severity", r.min_severity)?,
        owners: r.owners,
        teams: r.teams,
        environments: r.environments,
        create_time: 0,
        update_time: 0,
    })
}

fn rule_to_pb(r: RoutingRule) -> pb::RoutingRule {
    pb::RoutingRule {
        name: r.name(),
        display_name: r.display_name,
        channels: r.channels.iter().map(|c| format!("channels/{c}")).collect(),
        event_types: r.event_types.into_iter().map(event_type_to_pb).collect(),
        min_severity: r.min_severity.map_or(0, severity_to_pb),
        owners: r.owners,
        teams: r.teams,
        environments: r.environments,
        create_time: ts(r.create_time),
        update_time: ts(r.update_time),
    }
}

fn notification_to_pb(n: Notification) -> pb::Notification {
    pb::Notification {
        name: n.name(),
        event_type: event_type_to_pb(n.event_type),
        severity: severity_to_pb(n.severity),
        certificate: n.certificate,
        certificate_version: n.certificate_version,
        owner: n.owner,
        team: n.team,
        environment: n.environment,
        title: n.title,
        body: n.body,
        dedup_key: n.dedup_key,
        create_time: ts(n.create_time),
        resolve_time: n.resolve_time.and_then(ts),
    }
}

fn delivery_state_to_pb(s: DeliveryState) -> i32 {
    (match s {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Delivered => pb::DeliveryState::Delivered,
        DeliveryState::Failed => pb::DeliveryState::Failed,
    }) as i32
}

fn delivery_to_pb(d: Delivery) -> pb::Delivery {
    pb::Delivery {
        name: d.name(),
        channel: format!("channels/{}", d.channel_id),
        action: (match d.action {
            crate::model::Action::Trigger => pb::DeliveryAction::Trigger,
            crate::model::Action::Resolve => pb::DeliveryAction::Resolve,
        }) as i32,
        state: delivery_state_to_pb(d.state),
        attempts: d.attempts,
        max_attempts: d.max_attempts,
        next_attempt_time: d.next_attempt_at.filter(|_| d.state == DeliveryState::Pending).and_then(ts),
        last_error: d.last_error,
        response_status: d.response_status,
        response_excerpt: d.response_excerpt,
        create_time: ts(d.create_time),
        update_time: ts(d.update_time),
    }
}

fn inbox_to_pb(i: InboxItem) -> pb::InboxItem {
    pb::InboxItem {
        name: i.name(),
        notification: i.notification.name(),
        certificate: i.notification.certificate.clone(),
        event_type: event_type_to_pb(i.notification.event_type),
        severity: severity_to_pb(i.notification.severity),
        title: i.notification.title,
        read: i.read,
        create_time: ts(i.create_time),
    }
}

/// Reads a token of the listing `fingerprint`: the cursor it carries.
fn cursor<T: serde::de::DeserializeOwned>(token: &str, fingerprint: &str) -> Result<Option<T>, Status> {
    match page::decode_token(token, fingerprint).map_err(certctl_common::status_from_domain)? {
        None => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|_| invalid("page_token", "not a page token issued by this server")),
    }
}

/// Cuts one extra row off and makes the next page's token from the last kept row.
fn paginate<T>(
    mut rows: Vec<T>,
    limit: i64,
    fingerprint: &str,
    key: impl Fn(&T) -> serde_json::Value,
) -> (Vec<T>, String) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let token = match rows.last() {
        Some(last) if more => page::encode_token(fingerprint, key(last)),
        _ => String::new(),
    };
    (rows, token)
}

fn limit(page_size: i32) -> Result<i64, Status> {
    page::page_size(page_size).map_err(certctl_common::status_from_domain)
}

fn mask(m: Option<pbjson_types::FieldMask>) -> Vec<String> {
    m.map(|m| m.paths).unwrap_or_default()
}

pub struct NotificationGrpc<S: Store + ?Sized> {
    core: Arc<Notifications<S>>,
}

impl<S: Store + ?Sized> NotificationGrpc<S> {
    pub fn new(core: Arc<Notifications<S>>) -> Self {
        Self { core }
    }

    pub fn into_server(self) -> pb::notification_service_server::NotificationServiceServer<Self> {
        pb::notification_service_server::NotificationServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl<S: Store + ?Sized> NotificationService for NotificationGrpc<S> {
    async fn get_channel(&self, request: Request<pb::GetChannelRequest>) -> R<pb::GetChannelResponse> {
        let channel = self.core.get_channel(&request.get_ref().name).await?;
        Ok(Response::new(pb::GetChannelResponse { channel: Some(channel_to_pb(channel)) }))
    }

    async fn list_channels(&self, request: Request<pb::ListChannelsRequest>) -> R<pb::ListChannelsResponse> {
        let r = request.into_inner();
        let kind = (!r.filter.is_empty()).then_some(r.filter.trim().to_owned());
        if let Some(kind) = &kind
            && !ChannelConfig::KINDS.contains(&kind.as_str())
        {
            return Err(invalid(
                "filter",
                format!("`{kind}` is not a channel kind: use one of {:?}", ChannelConfig::KINDS),
            ));
        }
        let limit = limit(r.page_size)?;
        let fp = page::query_fingerprint(&["channels", kind.as_deref().unwrap_or("")]);
        let after: Option<String> = cursor(&r.page_token, &fp)?;
        let rows = self
            .core
            .store()
            .list_channels(kind.as_deref(), after.as_deref(), limit + 1)
            .await
            .map_err(Status::from)?;
        let (rows, next_page_token) = paginate(rows, limit, &fp, |c| serde_json::json!(c.id));
        Ok(Response::new(pb::ListChannelsResponse {
            channels: rows.into_iter().map(channel_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn create_channel(&self, request: Request<pb::CreateChannelRequest>) -> R<pb::CreateChannelResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let r = request.into_inner();
        let channel = r.channel.unwrap_or_default();
        let Some(config) = config_from_pb(channel.config)? else {
            return Err(invalid("channel.config", "set one of email, webhook, slack, teams, pagerduty, opsgenie"));
        };
        let stored = self
            .core
            .create_channel(&caller, &r.channel_id, channel.display_name, config, channel.disabled, &r.request_id)
            .await?;
        Ok(Response::new(pb::CreateChannelResponse { channel: Some(channel_to_pb(stored)) }))
    }

    async fn update_channel(&self, request: Request<pb::UpdateChannelRequest>) -> R<pb::UpdateChannelResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let r = request.into_inner();
        let channel = r.channel.unwrap_or_default();
        let config = config_from_pb(channel.config)?;
        let updated = self
            .core
            .update_channel(
                &caller,
                &channel.name,
                &mask(r.update_mask),
                channel.display_name,
                config,
                channel.disabled,
            )
            .await?;
        Ok(Response::new(pb::UpdateChannelResponse { channel: Some(channel_to_pb(updated)) }))
    }

    async fn delete_channel(&self, request: Request<pb::DeleteChannelRequest>) -> R<pb::DeleteChannelResponse> {
        let caller = Caller::from_metadata(request.metadata());
        self.core.delete_channel(&caller, &request.get_ref().name).await?;
        Ok(Response::new(pb::DeleteChannelResponse {}))
    }

    async fn test_channel(&self, request: Request<pb::TestChannelRequest>) -> R<pb::TestChannelResponse> {
        let outcome = self.core.test_channel(&request.get_ref().name).await?;
        Ok(Response::new(pb::TestChannelResponse {
            delivered: outcome.delivered,
            status: i32::from(outcome.status),
            response_excerpt: outcome.excerpt,
            error: outcome.error,
        }))
    }

    async fn get_routing_rule(&self, request: Request<pb::GetRoutingRuleRequest>) -> R<pb::GetRoutingRuleResponse> {
        let rule = self.core.get_rule(&request.get_ref().name).await?;
        Ok(Response::new(pb::GetRoutingRuleResponse { routing_rule: Some(rule_to_pb(rule)) }))
    }

    async fn list_routing_rules(
        &self,
        request: Request<pb::ListRoutingRulesRequest>,
    ) -> R<pb::ListRoutingRulesResponse> {
        let r = request.into_inner();
        let limit = limit(r.page_size)?;
        let fp = page::query_fingerprint(&["routingRules"]);
        let after: Option<String> = cursor(&r.page_token, &fp)?;
        let rows = self.core.store().list_rules(after.as_deref(), limit + 1).await.map_err(Status::from)?;
        let (rows, next_page_token) = paginate(rows, limit, &fp, |r| serde_json::json!(r.id));
        Ok(Response::new(pb::ListRoutingRulesResponse {
            routing_rules: rows.into_iter().map(rule_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn create_routing_rule(
        &self,
        request: Request<pb::CreateRoutingRuleRequest>,
    ) -> R<pb::CreateRoutingRuleResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let r = request.into_inner();
        let rule = rule_from_pb(r.routing_rule.unwrap_or_default())?;
        let stored = self.core.create_rule(&caller, &r.routing_rule_id, rule, &r.request_id).await?;
        Ok(Response::new(pb::CreateRoutingRuleResponse { routing_rule: Some(rule_to_pb(stored)) }))
    }

    async fn update_routing_rule(
        &self,
        request: Request<pb::UpdateRoutingRuleRequest>,
    ) -> R<pb::UpdateRoutingRuleResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let r = request.into_inner();
        let given = r.routing_rule.unwrap_or_default();
        let name = given.name.clone();
        let patch = rule_from_pb(given)?;
        let updated = self.core.update_rule(&caller, &name, &mask(r.update_mask), patch).await?;
        Ok(Response::new(pb::UpdateRoutingRuleResponse { routing_rule: Some(rule_to_pb(updated)) }))
    }

    async fn delete_routing_rule(
        &self,
        request: Request<pb::DeleteRoutingRuleRequest>,
    ) -> R<pb::DeleteRoutingRuleResponse> {
        let caller = Caller::from_metadata(request.metadata());
        self.core.delete_rule(&caller, &request.get_ref().name).await?;
        Ok(Response::new(pb::DeleteRoutingRuleResponse {}))
    }

    async fn get_notification(&self, request: Request<pb::GetNotificationRequest>) -> R<pb::GetNotificationResponse> {
        let name = &request.get_ref().name;
        let id = parse_name("name", "notifications/", name)?;
        let found = self.core.store().get_notification(id).await.map_err(Status::from)?;
        let n = found.ok_or_else(|| certctl_common::status_from_domain(DomainError::not_found(name)))?;
        Ok(Response::new(pb::GetNotificationResponse { notification: Some(notification_to_pb(n)) }))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> R<pb::ListNotificationsResponse> {
        let r = request.into_inner();
        let limit = limit(r.page_size)?;
        let filter = NotificationFilter {
            event_type: event_type_from_pb("event_type", r.event_type)?,
            certificate: (!r.certificate.is_empty()).then_some(r.certificate),
        };
        let fp = page::query_fingerprint(&[
            "notifications",
            filter.event_type.map_or("", EventType::as_str),
            filter.certificate.as_deref().unwrap_or(""),
        ]);
        let before: Option<(i64, String)> = cursor(&r.page_token, &fp)?;
        let rows = self.core.store().list_notifications(&filter, before, limit + 1).await.map_err(Status::from)?;
        let (rows, next_page_token) = paginate(rows, limit, &fp, |n| serde_json::json!([n.create_time, n.id]));
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: rows.into_iter().map(notification_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn list_deliveries(&self, request: Request<pb::ListDeliveriesRequest>) -> R<pb::ListDeliveriesResponse> {
        let r = request.into_inner();
        let limit = limit(r.page_size)?;
        let notification = parse_name("parent", "notifications/", &r.parent)?;
        let state = match pb::DeliveryState::try_from(r.state) {
            Ok(pb::DeliveryState::Unspecified) => None,
            Ok(pb::DeliveryState::Pending) => Some(DeliveryState::Pending),
            Ok(pb::DeliveryState::Delivered) => Some(DeliveryState::Delivered),
            Ok(pb::DeliveryState::Failed) => Some(DeliveryState::Failed),
            Err(_) => return Err(invalid("state", "not a delivery state")),
        };
        let channel =
            if r.channel.is_empty() { None } else { Some(parse_name("channel", "channels/", &r.channel)?.to_owned()) };
        let filter = DeliveryFilter {
            notification_id: (notification != "-").then(|| notification.to_owned()),
            state,
            channel_id: channel,
        };
        let fp = page::query_fingerprint(&[
            "deliveries",
            notification,
            state.map_or("", DeliveryState::as_str),
            filter.channel_id.as_deref().unwrap_or(""),
        ]);
        let before: Option<(i64, String)> = cursor(&r.page_token, &fp)?;
        let rows = self.core.store().list_deliveries(&filter, before, limit + 1).await.map_err(Status::from)?;
        let (rows, next_page_token) = paginate(rows, limit, &fp, |d| serde_json::json!([d.create_time, d.id]));
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: rows.into_iter().map(delivery_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn retry_delivery(&self, request: Request<pb::RetryDeliveryRequest>) -> R<pb::RetryDeliveryResponse> {
        let caller = Caller::from_metadata(request.metadata());
        let delivery = self.core.retry_delivery(&caller, &request.get_ref().name).await?;
        Ok(Response::new(pb::RetryDeliveryResponse { delivery: Some(delivery_to_pb(delivery)) }))
    }

    async fn list_inbox_items(&self, request: Request<pb::ListInboxItemsRequest>) -> R<pb::ListInboxItemsResponse> {
        let r = request.into_inner();
        let limit = limit(r.page_size)?;
        let filter = InboxFilter {
            recipient: parse_recipient("parent", &r.parent)?,
            unread_only: r.unread_only,
            certificate: (!r.certificate.is_empty()).then_some(r.certificate),
        };
        let fp = page::query_fingerprint(&[
            "inbox",
            &filter.recipient,
            if filter.unread_only { "unread" } else { "all" },
            filter.certificate.as_deref().unwrap_or(""),
        ]);
        let before: Option<(i64, String)> = cursor(&r.page_token, &fp)?;
        let rows = self.core.store().list_inbox(&filter, before, limit + 1).await.map_err(Status::from)?;
        let (rows, next_page_token) = paginate(rows, limit, &fp, |i| serde_json::json!([i.create_time, i.id]));
        Ok(Response::new(pb::ListInboxItemsResponse {
            inbox_items: rows.into_iter().map(inbox_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn list_inbox_groups(&self, request: Request<pb::ListInboxGroupsRequest>) -> R<pb::ListInboxGroupsResponse> {
        let r = request.into_inner();
        let limit = limit(r.page_size)?;
        let recipient = parse_recipient("parent", &r.parent)?;
        let fp = page::query_fingerprint(&["inboxGroups", &recipient]);
        let offset: i64 = cursor(&r.page_token, &fp)?.unwrap_or(0);
        let rows = self.core.store().inbox_groups(&recipient, offset, limit + 1).await.map_err(Status::from)?;
        let more = rows.len() as i64 > limit;
        let groups: Vec<pb::InboxGroup> = rows
            .into_iter()
            .take(limit as usize)
            .map(|g| pb::InboxGroup {
                certificate: g.certificate,
                unread_count: i32::try_from(g.unread).unwrap_or(i32::MAX),
                total_count: i32::try_from(g.total).unwrap_or(i32::MAX),
                latest: Some(inbox_to_pb(g.latest)),
            })
            .collect();
        let next_page_token =
            if more { page::encode_token(&fp, serde_json::json!(offset + groups.len() as i64)) } else { String::new() };
        Ok(Response::new(pb::ListInboxGroupsResponse { inbox_groups: groups, next_page_token }))
    }

    async fn update_inbox_item(&self, request: Request<pb::UpdateInboxItemRequest>) -> R<pb::UpdateInboxItemResponse> {
        let r = request.into_inner();
        let item = r.inbox_item.unwrap_or_default();
        let paths = mask(r.update_mask);
        if paths != ["read"] {
            return Err(invalid("update_mask", "only `read` can be updated"));
        }
        let (recipient, id) = parse_inbox_name("inbox_item.name", &item.name)?;
        let updated = self.core.store().set_read(&recipient, id, item.read).await.map_err(Status::from)?;
        let updated = updated.ok_or_else(|| certctl_common::status_from_domain(DomainError::not_found(&item.name)))?;
        Ok(Response::new(pb::UpdateInboxItemResponse { inbox_item: Some(inbox_to_pb(updated)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::parse_delivery_name;

    #[test]
    fn every_event_type_round_trips() {
        for t in EventType::ALL {
            assert_eq!(event_type_from_pb("t", event_type_to_pb(t)).unwrap(), Some(t));
        }
        assert!(event_type_from_pb("t", 99).is_err());
    }

    #[test]
    fn delivery_names_parse() {
        assert_eq!(parse_delivery_name("n", "notifications/a/deliveries/b").unwrap(), ("a", "b"));
        assert!(parse_delivery_name("n", "notifications/a").is_err());
    }
}
