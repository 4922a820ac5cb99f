//! The notification service's own types and rules, with no IO: events,
//! severities, routing rules and how they match, expiry thresholds, and the
//! retry backoff. Times are Unix seconds and "now" is always an argument.

use certctl_domain::{DomainError, UnixTime};
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Expiring,
    Expired,
    RenewalFailed,
    DeploymentFailed,
    VerificationMismatch,
    PolicyViolation,
    Revoked,
    AgentOffline,
    Digest,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        Self::Expiring,
        Self::Expired,
        Self::RenewalFailed,
        Self::DeploymentFailed,
        Self::VerificationMismatch,
        Self::PolicyViolation,
        Self::Revoked,
        Self::AgentOffline,
        Self::Digest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expiring => "expiring",
            Self::Expired => "expired",
            Self::RenewalFailed => "renewal_failed",
            Self::DeploymentFailed => "deployment_failed",
            Self::VerificationMismatch => "verification_mismatch",
            Self::PolicyViolation => "policy_violation",
            Self::Revoked => "revoked",
            Self::AgentOffline => "agent_offline",
            Self::Digest => "digest",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

/// How urgent an event is; ordered, so a rule can ask for "at least".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::Info, Self::Warning, Self::Error, Self::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Whether a delivery tells of an event or closes what an earlier one opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Trigger,
    Resolve,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trigger => "trigger",
            Self::Resolve => "resolve",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "trigger" => Some(Self::Trigger),
            "resolve" => Some(Self::Resolve),
            _ => None,
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// An event to tell people about, before it is recorded.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub event_type: Option<EventType>,
    pub severity: Option<Severity>,
    /// `certificates/{id}`, or empty.
    pub certificate: String,
    /// `certificates/{id}/versions/{n}`, or empty.
    pub certificate_version: String,
    pub owner: String,
    pub team: String,
    pub environment: String,
    pub title: String,
    pub body: String,
    /// Unique per event: recording the same key twice records it once.
    pub dedup_key: String,
    /// Groups the triggers that one resolve closes (a PagerDuty dedup key,
    /// an OpsGenie alias); empty for events nothing resolves.
    pub alert_key: String,
    /// Addresses that replace an email channel's own, for digests.
    pub recipients: Vec<String>,
    pub details: serde_json::Value,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: String,
    pub event_type: EventType,
    pub severity: Severity,
    pub certificate: String,
    pub certificate_version: String,
    pub owner: String,
    pub team: String,
    pub environment: String,
    pub title: String,
    pub body: String,
    pub dedup_key: String,
    pub alert_key: String,
    pub recipients: Vec<String>,
    pub details: serde_json::Value,
    pub create_time: UnixTime,
    pub resolve_time: Option<UnixTime>,
}

impl Notification {
    pub fn name(&self) -> String {
        format!("notifications/{}", self.id)
    }
}

/// One channel's delivery of one notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub notification_id: String,
    pub channel_id: String,
    pub action: Action,
    pub state: DeliveryState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Option<UnixTime>,
    pub last_error: String,
    pub response_status: i32,
    pub response_excerpt: String,
    pub create_time: UnixTime,
    pub update_time: UnixTime,
}

impl Delivery {
    pub fn name(&self) -> String {
        format!("notifications/{}/deliveries/{}", self.notification_id, self.id)
    }
}

/// An entry of an owner's or team's inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub id: String,
    /// `owners/{id}` or `teams/{id}`.
    pub recipient: String,
    pub notification: Notification,
    pub read: bool,
    pub create_time: UnixTime,
}

impl InboxItem {
    pub fn name(&self) -> String {
        format!("{}/inboxItems/{}", self.recipient, self.id)
    }
}

/// One certificate's share of an inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxGroup {
    pub certificate: String,
    pub unread: i64,
    pub total: i64,
    pub latest: InboxItem,
}

/// Picks channels for events; an empty list matches anything.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoutingRule {
    pub id: String,
    pub display_name: String,
    /// Channel ids.
    pub channels: Vec<String>,
    pub event_types: Vec<EventType>,
    pub min_severity: Option<Severity>,
    /// `owners/{id}`.
    pub owners: Vec<String>,
    /// `teams/{id}`.
    pub teams: Vec<String>,
    pub environments: Vec<String>,
    #[serde(skip)]
    pub create_time: UnixTime,
    #[serde(skip)]
    pub update_time: UnixTime,
}

impl RoutingRule {
    pub fn name(&self) -> String {
        format!("routingRules/{}", self.id)
    }

    /// Whether `event` goes to this rule's channels.
    pub fn matches(&self, event: &Event) -> bool {
        fn listed<T: PartialEq>(list: &[T], value: &T) -> bool {
            list.is_empty() || list.contains(value)
        }
        let severity = event.severity.unwrap_or(Severity::Info);
        event.event_type.is_some_and(|t| listed(&self.event_types, &t))
            && self.min_severity.is_none_or(|min| severity >= min)
            && listed(&self.owners, &event.owner)
            && listed(&self.teams, &event.team)
            && listed(&self.environments, &event.environment)
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = certctl_domain::error::Violations::new();
        v.check(!self.channels.is_empty(), "routing_rule.channels", "name at least one channel");
        for (i, owner) in self.owners.iter().enumerate() {
            v.check(owner.starts_with("owners/"), &format!("routing_rule.owners[{i}]"), "must be `owners/{owner}`");
        }
        for (i, team) in self.teams.iter().enumerate() {
            v.check(team.starts_with("teams/"), &format!("routing_rule.teams[{i}]"), "must be `teams/{team}`");
        }
        v.check(self.display_name.len() <= 200, "routing_rule.display_name", "at most 200 characters");
        v.into_result()
    }
}

/// The channels the rules pick for `event`, each once, in rule order.
pub fn route(rules: &[RoutingRule], event: &Event) -> Vec<String> {
    let mut channels: Vec<String> = Vec::new();
    for rule in rules.iter().filter(|r| r.matches(event)) {
        for channel in &rule.channels {
            if !channels.contains(channel) {
                channels.push(channel.clone());
            }
        }
    }
    channels
}

/// Alert thresholds when a renewal policy names none, in days before expiry.
pub const DEFAULT_THRESHOLDS: [i64; 4] = [30, 14, 7, 0];
const DAY: i64 = 86_400;

/// The most urgent threshold a version has crossed at `now`: the smallest
/// number of days `d` with `now >= not_after - d days`. `None` before the
/// first threshold. Each threshold is alerted at most once per version, so a
/// version first seen at 5 days left gets the 7-day alert and not the
/// 30- and 14-day ones as well.
pub fn crossed_threshold(thresholds: &[i64], not_after: UnixTime, now: UnixTime) -> Option<i64> {
    thresholds.iter().copied().filter(|d| *d >= 0 && now >= not_after - d * DAY).min()
}

/// How urgent an alert `days` before expiry is.
pub fn threshold_severity(days: i64) -> Severity {
    match days {
        ..=0 => Severity::Critical,
        1..=7 => Severity::Error,
        8..=14 => Severity::Warning,
        _ => Severity::Info,
    }
}

/// When a failed attempt is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure; it doubles after each one.
    pub base_secs: i64,
    pub max_backoff_secs: i64,
    pub max_attempts: i32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base_secs: 30, max_backoff_secs: 3_600, max_attempts: 10 }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts (1 for the first failure),
    /// or the endpoint's own `Retry-After` when it is longer.
    pub fn backoff(&self, attempts: i32, retry_after: Option<i64>) -> i64 {
        let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(30);
        let wait = self.base_secs.saturating_mul(1_i64 << exponent).min(self.max_backoff_secs);
        wait.max(retry_after.unwrap_or(0).min(self.max_backoff_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_fire_from_the_most_urgent_crossed_one() {
        let not_after = 100 * DAY;
        let check = |now: i64, expected: Option<i64>| {
            assert_eq!(crossed_threshold(&DEFAULT_THRESHOLDS, not_after, now), expected, "now = {now}");
        };
        check(not_after - 31 * DAY, None);
        check(not_after - 30 * DAY, Some(30));
        check(not_after - 15 * DAY, Some(30));
        check(not_after - 14 * DAY, Some(14));
        check(not_after - 5 * DAY, Some(7));
        check(not_after - 1, Some(7));
        check(not_after, Some(0));
        check(not_after + 400 * DAY, Some(0));
        assert_eq!(crossed_threshold(&[], not_after, not_after), None);
    }

    #[test]
    fn severities_rise_towards_expiry() {
        let table = [(30, Severity::Info), (14, Severity::Warning), (7, Severity::Error), (1, Severity::Error)];
        for (days, expected) in table {
            assert_eq!(threshold_severity(days), expected, "{days} days");
        }
        assert_eq!(threshold_severity(0), Severity::Critical);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_honours_retry_after() {
        let p = RetryPolicy { base_secs: 10, max_backoff_secs: 100, max_attempts: 5 };
        let table = [(1, None, 10), (2, None, 20), (3, None, 40), (5, None, 100), (40, None, 100), (1, Some(60), 60)];
        for (attempts, retry_after, expected) in table {
            assert_eq!(p.backoff(attempts, retry_after), expected, "attempt {attempts}, retry-after {retry_after:?}");
        }
        assert_eq!(p.backoff(1, Some(10_000)), 100, "Retry-After is capped too");
    }

    #[test]
    fn rules_match_on_every_listed_dimension() {
        let event = Event {
            event_type: Some(EventType::Expiring),
            severity: Some(Severity::Warning),
            owner: "owners/alice".into(),
            team: "teams/web".into(),
            environment: "production".into(),
            ..Event::default()
        };
        let any = RoutingRule { channels: vec!["mail".into()], ..RoutingRule::default() };
        assert!(any.matches(&event));
        let cases: [(RoutingRule, bool); 8] = [
            (RoutingRule { event_types: vec![EventType::Expiring], ..any.clone() }, true),
            (RoutingRule { event_types: vec![EventType::Revoked], ..any.clone() }, false),
            (RoutingRule { min_severity: Some(Severity::Warning), ..any.clone() }, true),
            (RoutingRule { min_severity: Some(Severity::Error), ..any.clone() }, false),
            (RoutingRule { owners: vec!["owners/bob".into()], ..any.clone() }, false),
            (RoutingRule { teams: vec!["teams/web".into(), "teams/db".into()], ..any.clone() }, true),
            (RoutingRule { environments: vec!["staging".into()], ..any.clone() }, false),
            (RoutingRule { environments: vec!["production".into()], ..any.clone() }, true),
        ];
        for (i, (rule, expected)) in cases.iter().enumerate() {
            assert_eq!(rule.matches(&event), *expected, "case {i}");
        }
        let rules = vec![
            RoutingRule { channels: vec!["mail".into(), "hook".into()], ..any.clone() },
            RoutingRule { channels: vec!["hook".into(), "pager".into()], min_severity: Some(Severity::Warning), ..any },
        ];
        assert_eq!(route(&rules, &event), ["mail", "hook", "pager"]);
    }
}
