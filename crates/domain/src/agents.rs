//! Agents after registration: enrolment with one-time join tokens, the
//! heartbeats their hubs report, and the status derived from them.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::Violations;
use crate::inventory::{Agent, DAY, validate_dns_name, validate_map};
use crate::name::{self, Collection};
use crate::{DomainError, UnixTime};

/// An agent heard from within this many seconds is ONLINE.
pub const ONLINE_WITHIN_SECS: i64 = 90;
/// An agent heard from within this many seconds, but not ONLINE, is STALE;
/// one heard from longer ago, or never, is OFFLINE.
pub const STALE_WITHIN_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentStatus {
    Online,
    Stale,
    Offline,
    Retired,
}

/// The status of an agent last seen at `last_seen_time`, as of `now`. A
/// heartbeat from the future (clocks disagree) counts as seen now.
pub fn agent_status(last_seen_time: Option<UnixTime>, retire_time: Option<UnixTime>, now: UnixTime) -> AgentStatus {
    if retire_time.is_some() {
        return AgentStatus::Retired;
    }
    match last_seen_time.map(|seen| now.saturating_sub(seen)) {
        Some(age) if age <= ONLINE_WITHIN_SECS => AgentStatus::Online,
        Some(age) if age <= STALE_WITHIN_SECS => AgentStatus::Stale,
        _ => AgentStatus::Offline,
    }
}

impl Agent {
    pub fn name(&self) -> String {
        Collection::Agents.name(&self.id)
    }

    pub fn status(&self, now: UnixTime) -> AgentStatus {
        agent_status(self.last_seen_time, self.retire_time, now)
    }
}

pub const MAX_CAPABILITIES: usize = 32;
pub const MAX_VERSION_LEN: usize = 64;
pub const MAX_HUB_LEN: usize = 253;

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

/// What an agent says about itself: its version and the target types it
/// deploys to. `prefix` leads each field name (`sessions[3].`).
fn check_self_report(v: &mut Violations, prefix: &str, version: &str, capabilities: &[String]) {
    v.check(
        version.len() <= MAX_VERSION_LEN && printable(version),
        &format!("{prefix}version"),
        "at most 64 printable characters",
    );
    v.check(capabilities.len() <= MAX_CAPABILITIES, &format!("{prefix}capabilities"), "at most 32 capabilities");
    for (i, c) in capabilities.iter().enumerate() {
        let ok = !c.is_empty()
            && c.len() <= 63
            && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        v.check(ok, &format!("{prefix}capabilities[{i}]"), "1-63 lower-case letters, digits, '-', '_' or '.'");
    }
}

/// What an agent sends when it redeems a join token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Enrolment {
    pub hostname: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

impl Enrolment {
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        if self.hostname.is_empty() {
            v.add("hostname", "required");
        } else if self.hostname.starts_with("*.") {
            v.add("hostname", "a host name has no wildcard");
        } else {
            v.merge(validate_dns_name("hostname", &self.hostname));
        }
        check_self_report(&mut v, "", &self.version, &self.capabilities);
        v.into_result()
    }

    /// The agent built from `token` and this enrolment; its id is the
    /// token's, or empty when the store is to derive one (`derived_agent_id`).
    pub fn agent(&self, token: &JoinToken, now: UnixTime) -> Agent {
        Agent {
            id: token.agent_id.clone(),
            display_name: if token.display_name.is_empty() {
                self.hostname.clone()
            } else {
                token.display_name.clone()
            },
            hostname: self.hostname.to_ascii_lowercase(),
            labels: token.labels.clone(),
            create_time: now,
            update_time: now,
            version: self.version.clone(),
            capabilities: self.capabilities.clone(),
            ..Default::default()
        }
    }
}

/// The `n`th candidate id (1, 2, ...) for an agent enrolled from `hostname`
/// by a token that names no id.
pub fn derived_agent_id(hostname: &str, n: u32) -> String {
    name::numbered_id(&name::id_from_common_name(hostname), n)
}

/// One agent's heartbeat as its hub reports it; `agent` is its name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSession {
    pub agent: String,
    pub hub: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

/// A checked `AgentSession`: empty strings and lists keep what is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub agent_id: String,
    pub hub: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

pub const MAX_SESSIONS: usize = 10_000;

/// Checks a batch of sessions. The result has one heartbeat per agent (the
/// last one given wins), ordered by id so that concurrent batches lock rows
/// in the same order.
pub fn heartbeats(sessions: Vec<AgentSession>) -> Result<Vec<Heartbeat>, DomainError> {
    let mut v = Violations::new();
    v.check(sessions.len() <= MAX_SESSIONS, "sessions", "at most 10000 sessions per call");
    let mut by_id = BTreeMap::new();
    for (i, s) in sessions.into_iter().enumerate() {
        let prefix = format!("sessions[{i}].");
        let id = match name::parse(&format!("{prefix}agent"), Collection::Agents, &s.agent) {
            Ok(id) => id.to_owned(),
            Err(e) => {
                v.merge(Err(e));
                continue;
            }
        };
        v.check(
            s.hub.len() <= MAX_HUB_LEN && printable(&s.hub),
            &format!("{prefix}hub"),
            "at most 253 printable characters",
        );
        check_self_report(&mut v, &prefix, &s.version, &s.capabilities);
        by_id.insert(
            id.clone(),
            Heartbeat { agent_id: id, hub: s.hub, version: s.version, capabilities: s.capabilities },
        );
    }
    v.into_result()?;
    Ok(by_id.into_values().collect())
}

/// An identity certificate's serial number as the inventory keeps it: hex,
/// upper case, without separators.
pub fn identity_serial(field: &str, serial: &str) -> Result<String, DomainError> {
    let hex: String = serial.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DomainError::invalid(field, "required: the serial number in hex, at most 64 digits"));
    }
    Ok(hex.to_ascii_uppercase())
}

// ---- join tokens -------------------------------------------------------------

pub const JOIN_TOKEN_SECRET_PREFIX: &str = "cjt_";
pub const JOIN_TOKEN_SECRET_BYTES: usize = 32;
pub const DEFAULT_JOIN_TOKEN_TTL_SECS: i64 = DAY;
pub const MAX_JOIN_TOKEN_TTL_SECS: i64 = 30 * DAY;

/// The secret a caller receives once: `cjt_` and the random bytes in
/// unpadded base64url.
pub fn join_token_secret(random: &[u8; JOIN_TOKEN_SECRET_BYTES]) -> String {
    format!("{JOIN_TOKEN_SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

/// What the inventory keeps of a secret: the hex SHA-256 of its text.
/// `None` when `secret` is not shaped like one (no lookup needed to refuse it).
pub fn join_token_secret_hash(secret: &str) -> Option<String> {
    let encoded = secret.strip_prefix(JOIN_TOKEN_SECRET_PREFIX)?;
    let random = URL_SAFE_NO_PAD.decode(encoded).ok()?;
    (random.len() == JOIN_TOKEN_SECRET_BYTES).then(|| hex::encode(Sha256::digest(secret.as_bytes())))
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinToken {
    pub id: String,
    pub display_name: String,
    /// Copied onto the agent.
    pub labels: BTreeMap<String, String>,
    /// The id the agent gets; empty: derived from its host name.
    pub agent_id: String,
    pub expire_time: UnixTime,
    pub create_time: UnixTime,
    pub redeem_time: Option<UnixTime>,
    /// `agents/{agent}` once redeemed.
    pub agent: String,
}

impl JoinToken {
    pub fn name(&self) -> String {
        Collection::JoinTokens.name(&self.id)
    }

    /// Checks everything a caller may set.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::new();
        v.merge(name::validate_id("join_token_id", &self.id));
        v.check(self.display_name.len() <= 200, "join_token.display_name", "at most 200 characters");
        v.merge(validate_map("join_token.labels", &self.labels));
        if !self.agent_id.is_empty() {
            v.merge(name::validate_id("join_token.agent_id", &self.agent_id));
        }
        v.into_result()
    }
}

/// When a token created at `now` expires: at `expire_time`, `ttl_secs`
/// after `now`, or by default a day after. At most 30 days ahead.
pub fn join_token_expire_time(
    now: UnixTime,
    expire_time: Option<UnixTime>,
    ttl_secs: Option<i64>,
) -> Result<UnixTime, DomainError> {
    match (expire_time, ttl_secs) {
        (Some(_), Some(_)) => Err(DomainError::invalid("join_token.ttl", "set expire_time or ttl, not both")),
        (None, Some(ttl)) if ttl <= 0 || ttl > MAX_JOIN_TOKEN_TTL_SECS => {
            Err(DomainError::invalid("join_token.ttl", "must be positive and at most 30 days"))
        }
        (None, Some(ttl)) => Ok(now + ttl),
        (Some(at), None) if at <= now || at > now + MAX_JOIN_TOKEN_TTL_SECS => {
            Err(DomainError::invalid("join_token.expire_time", "must be in the future and at most 30 days ahead"))
        }
        (Some(at), None) => Ok(at),
        (None, None) => Ok(now + DEFAULT_JOIN_TOKEN_TTL_SECS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_from_last_seen() {
        let now = 1_000_000;
        let check = |last_seen: Option<i64>, retired: Option<i64>, expected: AgentStatus| {
            assert_eq!(agent_status(last_seen, retired, now), expected, "last seen {last_seen:?}, retired {retired:?}");
        };
        check(Some(now), None, AgentStatus::Online);
        check(Some(now + 30), None, AgentStatus::Online);
        check(Some(now - ONLINE_WITHIN_SECS), None, AgentStatus::Online);
        check(Some(now - ONLINE_WITHIN_SECS - 1), None, AgentStatus::Stale);
        check(Some(now - STALE_WITHIN_SECS), None, AgentStatus::Stale);
        check(Some(now - STALE_WITHIN_SECS - 1), None, AgentStatus::Offline);
        check(Some(0), None, AgentStatus::Offline);
        check(None, None, AgentStatus::Offline);
        check(Some(now), Some(now - 1), AgentStatus::Retired);
        check(None, Some(now), AgentStatus::Retired);
        assert_eq!((ONLINE_WITHIN_SECS, STALE_WITHIN_SECS), (90, 300));
    }

    #[test]
    fn secrets_and_their_hashes() {
        let secret = join_token_secret(&[7; 32]);
        assert!(secret.starts_with("cjt_"));
        assert_eq!(secret.len(), 4 + 43);
        let hash = join_token_secret_hash(&secret).expect("a well-formed secret");
        assert_eq!(hash.len(), 64);
        assert_ne!(Some(hash.clone()), join_token_secret_hash(&join_token_secret(&[8; 32])));
        assert!(!hash.contains(&secret[4..]), "the hash is not the secret");
        for forged in ["", "cjt_", "cjt_short", &secret[4..], &format!("{secret}A"), &secret.replace("cjt_", "cjx_")] {
            assert_eq!(join_token_secret_hash(forged), None, "{forged:?}");
        }
    }

    #[test]
    fn token_expiry() {
        let now = 1_000_000;
        let check = |at: Option<i64>, ttl: Option<i64>, expected: Result<i64, &str>| match (
            join_token_expire_time(now, at, ttl),
            expected,
        ) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{at:?} {ttl:?}"),
            (Err(DomainError::InvalidArgument(v)), Err(field)) => assert_eq!(v[0].field, field, "{at:?} {ttl:?}"),
            (got, _) => panic!("{at:?} {ttl:?}: unexpected {got:?}"),
        };
        check(None, None, Ok(now + DAY));
        check(None, Some(3600), Ok(now + 3600));
        check(None, Some(30 * DAY), Ok(now + 30 * DAY));
        check(None, Some(30 * DAY + 1), Err("join_token.ttl"));
        check(None, Some(0), Err("join_token.ttl"));
        check(None, Some(-5), Err("join_token.ttl"));
        check(Some(now + 60), None, Ok(now + 60));
        check(Some(now), None, Err("join_token.expire_time"));
        check(Some(now + 31 * DAY), None, Err("join_token.expire_time"));
        check(Some(now + 60), Some(60), Err("join_token.ttl"));
    }

    #[test]
    fn enrolments() {
        let ok = Enrolment {
            hostname: "Web-1.example.com".into(),
            version: "0.1.0".into(),
            capabilities: vec!["nginx".into()],
        };
        assert!(ok.validate().is_ok());
        let fields = |e: Enrolment| match e.validate() {
            Err(DomainError::InvalidArgument(v)) => v.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(fields(Enrolment { hostname: String::new(), ..ok.clone() }), ["hostname"]);
        assert_eq!(fields(Enrolment { hostname: "*.example.com".into(), ..ok.clone() }), ["hostname"]);
        assert_eq!(fields(Enrolment { hostname: "a b".into(), ..ok.clone() }), ["hostname"]);
        assert_eq!(
            fields(Enrolment { version: "x\n".into(), capabilities: vec!["ok".into(), "Bad!".into()], ..ok.clone() }),
            ["version", "capabilities[1]"]
        );
        let token = JoinToken { labels: [("site".to_owned(), "fra".to_owned())].into(), ..Default::default() };
        let agent = ok.agent(&token, 5);
        assert_eq!(
            (agent.id.as_str(), agent.hostname.as_str(), agent.display_name.as_str()),
            ("", "web-1.example.com", "Web-1.example.com")
        );
        assert_eq!(agent.labels, token.labels);
        assert_eq!(derived_agent_id("Web-1.example.com", 1), "web-1.example.com");
        assert_eq!(derived_agent_id("Web-1.example.com", 2), "web-1.example.com-2");
    }

    #[test]
    fn session_batches() {
        let session =
            |agent: &str, hub: &str| AgentSession { agent: agent.into(), hub: hub.into(), ..Default::default() };
        let beats =
            heartbeats(vec![session("agents/b", "hub-1"), session("agents/a", ""), session("agents/b", "hub-2")])
                .unwrap();
        let got: Vec<(&str, &str)> = beats.iter().map(|h| (h.agent_id.as_str(), h.hub.as_str())).collect();
        assert_eq!(got, [("a", ""), ("b", "hub-2")], "one per agent, the last wins, in id order");

        let err = heartbeats(vec![
            session("agents/ok", "hub"),
            session("targets/x", "hub"),
            AgentSession { capabilities: vec![String::new()], ..session("agents/y", "h\u{0}") },
        ])
        .unwrap_err();
        let DomainError::InvalidArgument(v) = err else { panic!("expected INVALID_ARGUMENT") };
        let fields: Vec<&str> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["sessions[1].agent", "sessions[2].hub", "sessions[2].capabilities[0]"]);
        assert!(heartbeats(vec![session("agents/a", ""); MAX_SESSIONS + 1]).is_err());
    }

    #[test]
    fn serials() {
        assert_eq!(identity_serial("s", "0a:1B:ff").unwrap(), "0A1BFF");
        assert!(identity_serial("s", "").is_err());
        assert!(identity_serial("s", "xyz").is_err());
        assert!(identity_serial("s", &"a".repeat(65)).is_err());
    }

    #[test]
    fn join_token_validation() {
        let token = JoinToken { id: "web-hosts".into(), agent_id: "web-1".into(), ..Default::default() };
        assert!(token.validate().is_ok());
        let bad = JoinToken { id: "Bad".into(), agent_id: "Also Bad".into(), ..Default::default() };
        let Err(DomainError::InvalidArgument(v)) = bad.validate() else { panic!("expected a refusal") };
        let fields: Vec<&str> = v.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["join_token_id", "join_token.agent_id"]);
    }
}
