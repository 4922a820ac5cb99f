//! Certificate listings: every filter and order, keyset pages, and the
//! summary, checked against a model computed from the fixture itself.

use std::sync::Arc;

use certctl_domain::inventory::{Certificate, CertificateState, CurrentVersion};
use certctl_domain::name::version_name;
use certctl_inventory::store::{CertificateOrder, CertificateQuery, Cursor, PENDING_EXPIRY_KEY, Store, Summary};

use crate::{DAY, NOW, event, listed_ids, parsed, pem, query};

/// One fixture certificate: what is stored, and what the model reasons on.
#[derive(Debug, Clone)]
struct Spec {
    id: String,
    owner: String,
    team: String,
    issuer: String,
    environment: String,
    common_name: String,
    sans: Vec<String>,
    /// `None` while pending.
    not_after: Option<i64>,
    alert_lead_secs: i64,
    create_time: i64,
}

impl Spec {
    fn certificate(&self) -> Certificate {
        Certificate {
            id: self.id.clone(),
            common_name: self.common_name.clone(),
            subject_alt_names: self.sans.clone(),
            owner: self.owner.clone(),
            team: self.team.clone(),
            issuer: self.issuer.clone(),
            environment: self.environment.clone(),
            alert_lead_secs: self.alert_lead_secs,
            // The store takes the lead from the policy (see `load`).
            renewal_policy: if self.alert_lead_secs == 14 * DAY {
                "renewalPolicies/lead14".into()
            } else {
                String::new()
            },
            create_time: self.create_time,
            update_time: self.create_time,
            ..Default::default()
        }
    }

    /// The state by the domain's rule, which the SQL filters must agree with.
    fn state(&self, now: i64) -> CertificateState {
        let current = self.not_after.map(|not_after| CurrentVersion {
            version: 1,
            serial_number: String::new(),
            sha256_fingerprint: String::new(),
            not_before: 0,
            not_after,
        });
        Certificate { current, ..self.certificate() }.state(now)
    }

    fn matches(&self, search: &str) -> bool {
        std::iter::once(&self.common_name).chain(&self.sans).any(|s| s.to_lowercase().contains(search))
    }
}

/// 25 certificates: four pending, ties on not_after and on create_time, ids
/// in an order unrelated to creation, mixed-case names, boundary expiries.
fn fixture() -> Vec<Spec> {
    let expiry: [Option<i64>; 25] = [
        Some(-10 * DAY),
        Some(0), // expires exactly now: expired
        Some(DAY),
        Some(7 * DAY),
        Some(7 * DAY),
        None,
        Some(7 * DAY),
        Some(14 * DAY),
        Some(30 * DAY), // exactly at the 30-day lead: expiring
        Some(30 * DAY + 1),
        Some(60 * DAY),
        None,
        Some(60 * DAY),
        Some(90 * DAY),
        Some(-1),
        Some(8 * DAY),
        Some(30 * DAY),
        None,
        Some(365 * DAY),
        Some(1),
        Some(29 * DAY),
        Some(60 * DAY),
        Some(120 * DAY),
        None,
        Some(3 * DAY),
    ];
    expiry
        .iter()
        .enumerate()
        .map(|(i, offset)| {
            let common_name = match i {
                3 => "web_1.example.com".to_owned(),
                4 => "webx1.example.com".to_owned(),
                6 => String::new(),
                _ => format!("Svc{i}.Example.COM"),
            };
            let sans = match i {
                6 => vec!["only-san.example.net".to_owned()],
                _ if i % 4 == 0 => vec![format!("API-{i}.Internal")],
                _ => Vec::new(),
            };
            Spec {
                id: format!("c{:02}", (i * 7) % 25),
                owner: ["owners/alice", "owners/bob", "owners/carol"][i % 3].to_owned(),
                team: if i % 5 == 0 { String::new() } else { ["teams/core", "teams/edge"][i % 2].to_owned() },
                issuer: ["issuers/acme", "issuers/local", "issuers/vault"][(i / 2) % 3].to_owned(),
                environment: ["prod", "staging", "dev"][(i / 3) % 3].to_owned(),
                common_name,
                sans,
                not_after: offset.map(|o| NOW + o),
                alert_lead_secs: if i % 5 == 1 { 14 * DAY } else { 30 * DAY },
                create_time: NOW - 10_000 + (i as i64 / 2) * 100,
            }
        })
        .collect()
}

async fn load<S: Store>(store: &S) -> Vec<Spec> {
    crate::policy_with_lead(store, "lead14", 14).await;
    let specs = fixture();
    for (i, spec) in specs.iter().enumerate() {
        let c = spec.certificate();
        store.create_certificate(&c, None, event("CreateCertificate", &c.name())).await.unwrap();
        if let Some(not_after) = spec.not_after {
            let serial = format!("{i:02X}");
            let v = parsed(&serial, not_after - 90 * DAY, not_after);
            store
                .add_version(&spec.id, &pem(&serial), &v, NOW, |n| {
                    event("CreateCertificateVersion", &version_name(&spec.id, n))
                })
                .await
                .unwrap();
        }
    }
    specs
}

const ORDERS: [CertificateOrder; 6] = [
    CertificateOrder::NotAfter { descending: false },
    CertificateOrder::NotAfter { descending: true },
    CertificateOrder::Name { descending: false },
    CertificateOrder::Name { descending: true },
    CertificateOrder::CreateTime { descending: false },
    CertificateOrder::CreateTime { descending: true },
];

/// The model: the ids a listing should return, in order.
fn expected(specs: &[Spec], order: CertificateOrder, keep: &dyn Fn(&Spec) -> bool) -> Vec<String> {
    let mut rows: Vec<(i64, String)> = specs
        .iter()
        .filter(|s| keep(s))
        .map(|s| {
            let key = match order {
                CertificateOrder::NotAfter { .. } => s.not_after.unwrap_or(i64::MAX),
                CertificateOrder::Name { .. } => 0,
                CertificateOrder::CreateTime { .. } => s.create_time,
                CertificateOrder::RenewTime => unreachable!("renewal-time order has its own suite, renewal_times.rs"),
            };
            (key, s.id.clone())
        })
        .collect();
    rows.sort();
    if matches!(
        order,
        CertificateOrder::NotAfter { descending: true }
            | CertificateOrder::Name { descending: true }
            | CertificateOrder::CreateTime { descending: true }
    ) {
        rows.reverse();
    }
    rows.into_iter().map(|(_, id)| id).collect()
}

/// The cursor after `last`, as the service builds it.
fn cursor_after(order: CertificateOrder, last: &Certificate) -> Cursor {
    let key = match order {
        CertificateOrder::NotAfter { .. } => last.current.as_ref().map_or(PENDING_EXPIRY_KEY, |v| v.not_after),
        CertificateOrder::Name { .. } => 0,
        CertificateOrder::CreateTime { .. } => last.create_time,
        CertificateOrder::RenewTime => unreachable!("renewal-time order has its own suite, renewal_times.rs"),
    };
    Cursor { key, id: last.id.clone() }
}

/// Walks every page of `base` with pages of `size`; returns the ids in order.
async fn walk<S: Store>(store: &S, base: &CertificateQuery, size: i64) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    for _ in 0..=100 {
        let page_query = CertificateQuery { after: after.clone(), limit: size, ..base.clone() };
        let page = store.list_certificates(&page_query).await.unwrap();
        assert!(page.len() as i64 <= size, "a page holds at most its limit");
        let more = page.len() as i64 == size;
        after = page.last().map(|last| cursor_after(base.order, last));
        ids.extend(page.into_iter().map(|c| c.id));
        if !more {
            return ids;
        }
    }
    panic!("pagination of {base:?} did not end");
}

async fn every_order_pages_without_gaps_or_duplicates<S: Store>(store: Arc<S>) {
    let specs = load(store.as_ref()).await;
    assert!(specs.iter().filter(|s| s.not_after.is_none()).count() >= 4);
    for order in ORDERS {
        let want = expected(&specs, order, &|_| true);
        assert_eq!(want.len(), 25);
        let base = CertificateQuery { order, ..query() };
        assert_eq!(listed_ids(store.as_ref(), &base).await, want, "one page, {order:?}");
        for size in [1, 2, 7, 25, 100] {
            assert_eq!(walk(store.as_ref(), &base, size).await, want, "{order:?} in pages of {size}");
        }
    }
    // Pending certificates sort after every real expiry.
    let ascending = expected(&specs, ORDERS[0], &|_| true);
    let pending: Vec<_> = specs.iter().filter(|s| s.not_after.is_none()).map(|s| s.id.clone()).collect();
    assert!(ascending[25 - pending.len()..].iter().all(|id| pending.contains(id)));
}

type Case = (&'static str, CertificateQuery, Box<dyn Fn(&Spec) -> bool + Send + Sync>);

fn filter_cases() -> Vec<Case> {
    let q = query;
    let text = |v: &str| Some(v.to_owned());
    let search = |s: &'static str| -> Case {
        (s, CertificateQuery { search: Some(s.into()), ..query() }, Box::new(move |spec: &Spec| spec.matches(s)))
    };
    let mut cases: Vec<Case> = vec![
        ("owner", CertificateQuery { owner: text("owners/bob"), ..q() }, Box::new(|s: &Spec| s.owner == "owners/bob")),
        ("team", CertificateQuery { team: text("teams/edge"), ..q() }, Box::new(|s: &Spec| s.team == "teams/edge")),
        (
            "issuer",
            CertificateQuery { issuer: text("issuers/vault"), ..q() },
            Box::new(|s: &Spec| s.issuer == "issuers/vault"),
        ),
        (
            "environment",
            CertificateQuery { environment: text("staging"), ..q() },
            Box::new(|s: &Spec| s.environment == "staging"),
        ),
        (
            "expire_before now",
            CertificateQuery { expire_before: Some(NOW), ..q() },
            Box::new(|s: &Spec| s.not_after.is_some_and(|t| t < NOW)),
        ),
        (
            "expire_before a tie",
            CertificateQuery { expire_before: Some(NOW + 7 * DAY + 1), ..q() },
            Box::new(|s: &Spec| s.not_after.is_some_and(|t| t < NOW + 7 * DAY + 1)),
        ),
        (
            "owner and state",
            CertificateQuery { owner: text("owners/alice"), state: Some(CertificateState::Expiring), ..q() },
            Box::new(|s: &Spec| s.owner == "owners/alice" && s.state(NOW) == CertificateState::Expiring),
        ),
        (
            "issuer, environment and expire_before",
            CertificateQuery {
                issuer: text("issuers/acme"),
                environment: text("prod"),
                expire_before: Some(NOW + 60 * DAY),
                ..q()
            },
            Box::new(|s: &Spec| {
                s.issuer == "issuers/acme" && s.environment == "prod" && s.not_after.is_some_and(|t| t < NOW + 60 * DAY)
            }),
        ),
        (
            "team and search",
            CertificateQuery { team: text("teams/core"), search: text("svc1"), ..q() },
            Box::new(|s: &Spec| s.team == "teams/core" && s.matches("svc1")),
        ),
    ];
    for state in [
        CertificateState::Pending,
        CertificateState::Active,
        CertificateState::Expiring,
        CertificateState::Expired,
        CertificateState::Revoked,
    ] {
        cases.push((
            "state",
            CertificateQuery { state: Some(state), ..q() },
            Box::new(move |s: &Spec| s.state(NOW) == state),
        ));
    }
    // CN substrings, SAN-only matches, stored mixed case, and LIKE wildcards
    // taken literally.
    for s in ["svc1", "svc7.example.com", "api-8", "api-", "only-san", "web_1", "%", "nomatch"] {
        cases.push(search(s));
    }
    cases
}

async fn every_filter_matches_the_model_in_every_order<S: Store>(store: Arc<S>) {
    let specs = load(store.as_ref()).await;
    for (label, base, keep) in filter_cases() {
        for order in ORDERS {
            let want = expected(&specs, order, keep.as_ref());
            let q = CertificateQuery { order, ..base.clone() };
            assert_eq!(listed_ids(store.as_ref(), &q).await, want, "{label} {q:?}");
            assert_eq!(walk(store.as_ref(), &q, 2).await, want, "{label} in pages of 2, {q:?}");
        }
    }
}

/// The model's own sanity: every case must be able to tell right from wrong.
#[test]
fn the_filter_cases_are_discriminating() {
    let specs = fixture();
    let count = |label: &str| {
        let (_, _, keep) = filter_cases().into_iter().find(|(l, _, _)| *l == label).unwrap();
        specs.iter().filter(|s| keep(s)).count()
    };
    for label in ["owner", "team", "issuer", "environment", "expire_before now", "owner and state", "team and search"] {
        let n = count(label);
        assert!(n > 0 && n < specs.len(), "{label} keeps {n}");
    }
    let states: Vec<_> = specs.iter().map(|s| s.state(NOW)).collect();
    for state in
        [CertificateState::Pending, CertificateState::Active, CertificateState::Expiring, CertificateState::Expired]
    {
        assert!(states.iter().filter(|s| **s == state).count() >= 3, "{state:?}");
    }
    assert_eq!(count("web_1"), 1, "the underscore is not a wildcard");
    assert_eq!(count("api-8"), 1, "found only through its SAN");
    assert_eq!(count("svc7.example.com"), 1, "found despite its stored case");
    assert_eq!(count("only-san"), 1);
}

fn model_summary(specs: &[Spec], now: i64) -> Summary {
    let count = |state| specs.iter().filter(|s| s.state(now) == state).count() as i64;
    let within = |days: i64| {
        specs.iter().filter(|s| s.not_after.is_some_and(|t| t > now && t <= now + days * DAY)).count() as i64
    };
    Summary {
        total: specs.len() as i64,
        pending: count(CertificateState::Pending),
        active: count(CertificateState::Active),
        expiring: count(CertificateState::Expiring),
        expired: count(CertificateState::Expired),
        revoked: 0,
        expiring_within_7_days: within(7),
        expiring_within_30_days: within(30),
    }
}

async fn summaries_count_each_state<S: Store>(store: Arc<S>) {
    assert_eq!(store.summarize(NOW).await.unwrap(), Summary::default(), "an empty inventory");
    let specs = load(store.as_ref()).await;
    for now in [NOW, NOW + 31 * DAY, NOW - 100 * DAY] {
        let summary = store.summarize(now).await.unwrap();
        assert_eq!(summary, model_summary(&specs, now), "at {now}");
        let states = summary.pending + summary.active + summary.expiring + summary.expired + summary.revoked;
        assert_eq!(states, summary.total, "each certificate is in exactly one state");
    }
    let summary = store.summarize(NOW).await.unwrap();
    assert!(summary.expiring_within_7_days > 0 && summary.expiring_within_7_days < summary.expiring_within_30_days);
}

conformance!(
    every_order_pages_without_gaps_or_duplicates,
    every_filter_matches_the_model_in_every_order,
    summaries_count_each_state,
);
