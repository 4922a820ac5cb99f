//! Owners, teams, targets, agents, renewal policies and policies: the JSON document
//! tables, each checked through the same generic steps.

use std::fmt::Debug;
use std::sync::Arc;

use certctl_domain::inventory::{
    Agent, KeyAlgorithm, Owner, RenewalPolicy, Target, TargetConfig, Team, WebServerConfig,
};
use certctl_domain::policy::{Policy, Rule, RuleKind, Selector, Severity};
use certctl_inventory::store::{Document, Store};

use crate::{DAY, NOW, action, assert_already_exists, assert_not_found, event, outbox, outbox_actions};

fn owner(id: &str) -> Owner {
    Owner {
        id: id.into(),
        display_name: format!("Owner {id}"),
        email: format!("{id}@example.com"),
        team: "teams/edge".into(),
        create_time: NOW,
        update_time: NOW,
    }
}

fn team(id: &str) -> Team {
    Team {
        id: id.into(),
        display_name: format!("Team {id}"),
        email: "edge@example.com".into(),
        create_time: NOW,
        update_time: NOW,
    }
}

fn target(id: &str) -> Target {
    Target {
        id: id.into(),
        display_name: format!("Target {id}"),
        agent: "agents/host-1".into(),
        labels: [("site".to_owned(), "fra".to_owned())].into(),
        config: TargetConfig::Nginx(WebServerConfig {
            certificate_path: "/etc/nginx/tls/web.crt".into(),
            key_path: "/etc/nginx/tls/web.key".into(),
            verify_host: "127.0.0.1".into(),
            verify_port: 443,
            verify_server_name: "web.example.com".into(),
            validate_command: "nginx -t -c /etc/nginx/nginx.conf".into(),
            reload_command: String::new(),
        }),
        create_time: NOW,
        update_time: NOW,
    }
}

fn agent(id: &str) -> Agent {
    Agent {
        id: id.into(),
        display_name: format!("Agent {id}"),
        hostname: format!("{id}.hosts.example.com"),
        labels: [("os".to_owned(), "linux".to_owned())].into(),
        create_time: NOW,
        update_time: NOW,
        ..Default::default()
    }
}

fn policy(id: &str) -> RenewalPolicy {
    RenewalPolicy {
        id: id.into(),
        display_name: format!("Policy {id}"),
        alert_threshold_days: vec![30, 14, 7, 0],
        renew_before_lifetime_fraction: Some(1.0 / 3.0),
        renew_before_secs: None,
        create_time: NOW,
        update_time: NOW,
    }
}

fn certificate_policy(id: &str) -> Policy {
    Policy {
        id: id.into(),
        display_name: format!("Certificate policy {id}"),
        rules: vec![
            Rule {
                id: "domains".into(),
                severity: Severity::Error,
                kind: RuleKind::AllowedDomains(vec!["*.example.com".into(), ".internal.example.org".into()]),
            },
            Rule {
                id: "keys".into(),
                severity: Severity::Critical,
                kind: RuleKind::KeyAlgorithms { allowed: vec![KeyAlgorithm::EcdsaP256], min_strength_bits: 128 },
            },
        ],
        selector: Selector {
            labels: [("tier".to_owned(), "web".to_owned())].into(),
            environments: vec!["prod".into()],
            teams: vec!["teams/edge".into()],
        },
        create_time: NOW,
        update_time: NOW,
    }
}

fn file_config() -> TargetConfig {
    TargetConfig::File {
        directory: "/srv/certs".into(),
        mode: "0640".into(),
        owner: "www-data".into(),
        group: "www-data".into(),
        post_deploy_command: "systemctl reload app".into(),
    }
}

/// Create, duplicate, read, update, delete and the not-found cases of one
/// document type, with the outbox entries they must leave.
async fn check_crud<S, D>(store: &S, collection: &str, kind: &str, make: fn(&str) -> D, change: fn(D) -> D)
where
    S: Store,
    D: Document + Clone + PartialEq + Debug,
{
    let name = |id: &str| format!("{collection}/{id}");
    let before = outbox(store).await.len();

    let doc = make("x");
    store.create_document(&doc, event(&format!("Create{kind}"), &name("x"))).await.unwrap();
    assert_eq!(store.get_document::<D>("x").await.unwrap(), doc);

    let duplicate = change(make("x"));
    assert_already_exists(
        store.create_document(&duplicate, event(&format!("Create{kind}"), &name("x"))).await,
        &name("x"),
    );
    assert_eq!(store.get_document::<D>("x").await.unwrap(), doc, "a refused create changes nothing");

    let changed = change(doc.clone());
    assert_ne!(changed, doc);
    store.update_document(&changed, event(&format!("Update{kind}"), &name("x"))).await.unwrap();
    assert_eq!(store.get_document::<D>("x").await.unwrap(), changed);

    let ghost = make("ghost");
    assert_not_found(store.get_document::<D>("ghost").await, &name("ghost"));
    assert_not_found(
        store.update_document(&ghost, event(&format!("Update{kind}"), &name("ghost"))).await,
        &name("ghost"),
    );
    assert_not_found(
        store.delete_document::<D>("ghost", event(&format!("Delete{kind}"), &name("ghost"))).await,
        &name("ghost"),
    );

    store.delete_document::<D>("x", event(&format!("Delete{kind}"), &name("x"))).await.unwrap();
    assert_not_found(store.get_document::<D>("x").await, &name("x"));
    assert!(store.list_documents::<D>(None, 10).await.unwrap().is_empty());

    let actions = outbox_actions(store).await;
    assert_eq!(
        actions[before..],
        [
            action(&format!("Create{kind}"), &name("x")),
            action(&format!("Update{kind}"), &name("x")),
            action(&format!("Delete{kind}"), &name("x")),
        ],
        "one entry per successful mutation, none for refused ones"
    );
}

async fn documents_round_trip<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    check_crud(s, "owners", "Owner", owner, |o| Owner {
        display_name: "Renamed".into(),
        team: String::new(),
        update_time: NOW + 1,
        ..o
    })
    .await;
    check_crud(s, "teams", "Team", team, |t| Team { email: "core@example.com".into(), update_time: NOW + 1, ..t })
        .await;
    // A target may change its type; the typed config round-trips.
    check_crud(s, "targets", "Target", target, |t| Target {
        config: file_config(),
        agent: String::new(),
        update_time: NOW + 1,
        ..t
    })
    .await;
    check_crud(s, "agents", "Agent", agent, |a| Agent {
        labels: Default::default(),
        hostname: "moved.example.com".into(),
        ..a
    })
    .await;
    check_crud(s, "renewalPolicies", "RenewalPolicy", policy, |p| RenewalPolicy {
        alert_threshold_days: vec![7],
        renew_before_lifetime_fraction: None,
        renew_before_secs: Some(10 * DAY),
        ..p
    })
    .await;
    check_crud(s, "policies", "Policy", certificate_policy, |mut p| {
        p.rules[1].kind = RuleKind::MaxLifetime { secs: 90 * DAY };
        p.rules.push(Rule {
            id: "lead".into(),
            severity: Severity::Warning,
            kind: RuleKind::MinRenewalLead { secs: 7 * DAY },
        });
        p.selector = Selector::default();
        p.update_time = NOW + 1;
        p
    })
    .await;
}

/// Ids inserted out of order, with the punctuation host-derived ids carry.
const IDS: [&str; 9] = ["m", "b", "z", "a1", "a", "k-2", "k.1", "k1", "c"];

async fn check_order_and_pages<S, D>(store: &S, collection: &str, make: fn(&str) -> D)
where
    S: Store,
    D: Document + Clone + PartialEq + Debug,
{
    for id in IDS {
        store.create_document(&make(id), event("Create", &format!("{collection}/{id}"))).await.unwrap();
    }
    let mut sorted = IDS.to_vec();
    sorted.sort_unstable();
    let all: Vec<D> = store.list_documents(None, 100).await.unwrap();
    assert_eq!(all, sorted.iter().map(|id| make(id)).collect::<Vec<_>>(), "{collection} by id, bytewise");

    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = Vec::new();
    for _ in 0..10 {
        let page: Vec<D> = store.list_documents(after.as_deref(), 4).await.unwrap();
        pages.push(page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.id().to_owned());
        walked.extend(page.iter().map(|d| d.id().to_owned()));
    }
    assert_eq!(walked, sorted, "{collection} in pages of 4");
    assert_eq!(pages, [4, 4, 1, 0]);
    assert!(store.list_documents::<D>(Some("zz"), 4).await.unwrap().is_empty());
}

async fn documents_are_ordered_by_id_and_paged<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    check_order_and_pages(s, "owners", owner).await;
    check_order_and_pages(s, "teams", team).await;
    check_order_and_pages(s, "targets", target).await;
    check_order_and_pages(s, "agents", agent).await;
    check_order_and_pages(s, "renewalPolicies", policy).await;
    check_order_and_pages(s, "policies", certificate_policy).await;
    // Each table holds only its own documents, though the ids are the same.
    assert_eq!(store.list_documents::<Team>(None, 100).await.unwrap().len(), IDS.len());
    assert_eq!(outbox(s).await.len(), 6 * IDS.len());
}

conformance!(documents_round_trip, documents_are_ordered_by_id_and_paged);
