//! Agents beyond their documents: join tokens and their one redemption,
//! identities, retirement, heartbeats and the status filter.

use std::sync::Arc;

use certctl_common::StoreError;
use certctl_domain::agents::{AgentStatus, Enrolment, Heartbeat, JoinToken, join_token_secret, join_token_secret_hash};
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::Agent;
use certctl_inventory::store::{AgentQuery, Redemption, Store};

use crate::{DAY, NOW, action, assert_already_exists, assert_not_found, event, outbox, outbox_actions};

const RACERS: usize = 8;

fn token(id: &str, agent_id: &str) -> JoinToken {
    JoinToken {
        id: id.into(),
        display_name: format!("Token {id}"),
        labels: [("site".to_owned(), "fra".to_owned())].into(),
        agent_id: agent_id.into(),
        expire_time: NOW + DAY,
        create_time: NOW,
        redeem_time: None,
        agent: String::new(),
    }
}

/// The hash a token with secret number `n` is stored under.
fn hash(n: u8) -> String {
    join_token_secret_hash(&join_token_secret(&[n; 32])).expect("a well-formed secret")
}

fn enrolment(hostname: &str) -> Enrolment {
    Enrolment { hostname: hostname.into(), version: "0.3.1".into(), capabilities: vec!["file".into(), "nginx".into()] }
}

fn redeem_events(token: &JoinToken, agent: &Agent) -> Vec<NewAuditEvent> {
    vec![event("RedeemJoinToken", &token.name()), event("CreateAgent", &agent.name())]
}

fn agent(id: &str) -> Agent {
    Agent {
        id: id.into(),
        display_name: format!("Agent {id}"),
        hostname: format!("{id}.hosts.example.com"),
        create_time: NOW,
        update_time: NOW,
        ..Default::default()
    }
}

async fn create_agent<S: Store>(store: &S, id: &str) {
    store.create_document(&agent(id), event("CreateAgent", &format!("agents/{id}"))).await.expect("create the agent");
}

fn beat(id: &str, hub: &str, version: &str, capabilities: &[&str]) -> Heartbeat {
    Heartbeat {
        agent_id: id.into(),
        hub: hub.into(),
        version: version.into(),
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
    }
}

async fn join_tokens_round_trip<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    for id in ["m", "b", "z", "a"] {
        s.create_join_token(
            &token(id, ""),
            &hash(id.as_bytes()[0]),
            event("CreateJoinToken", &format!("joinTokens/{id}")),
        )
        .await
        .unwrap();
    }
    assert_eq!(s.get_join_token("m").await.unwrap(), token("m", ""));
    assert_already_exists(
        s.create_join_token(&token("m", "x"), &hash(99), event("CreateJoinToken", "joinTokens/m")).await,
        "joinTokens/m",
    );
    let page = s.list_join_tokens(None, 3).await.unwrap();
    assert_eq!(page.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["a", "b", "m"]);
    let rest = s.list_join_tokens(Some("m"), 3).await.unwrap();
    assert_eq!(rest.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["z"]);

    s.delete_join_token("m", event("DeleteJoinToken", "joinTokens/m")).await.unwrap();
    assert_not_found(s.get_join_token("m").await, "joinTokens/m");
    assert_not_found(s.delete_join_token("m", event("DeleteJoinToken", "joinTokens/m")).await, "joinTokens/m");
    // A deleted token's secret no longer redeems anything.
    let gone = s.redeem_join_token(&hash(b'm'), &enrolment("web"), NOW, redeem_events).await.unwrap();
    assert_eq!(gone, Redemption::Unknown);

    let actions = outbox_actions(s).await;
    assert_eq!(actions.len(), 5, "four creates and one delete: {actions:?}");
    assert_eq!(actions[4], action("DeleteJoinToken", "joinTokens/m"));
}

async fn a_token_redeems_once_into_an_agent<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    s.create_join_token(&token("web", ""), &hash(1), event("CreateJoinToken", "joinTokens/web")).await.unwrap();
    let before = outbox(s).await.len();

    let redeemed =
        s.redeem_join_token(&hash(1), &enrolment("Web-1.Example.com"), NOW + 10, redeem_events).await.unwrap();
    let Redemption::Redeemed { token: spent, agent } = redeemed else {
        panic!("expected a redemption, got {redeemed:?}")
    };
    assert_eq!(agent.id, "web-1.example.com", "derived from the host name");
    assert_eq!(agent.hostname, "web-1.example.com");
    assert_eq!(agent.labels, token("web", "").labels, "labels come from the token");
    assert_eq!((agent.version.as_str(), agent.capabilities.clone()), ("0.3.1", vec!["file".into(), "nginx".into()]));
    assert_eq!((agent.create_time, agent.last_seen_time, agent.retire_time), (NOW + 10, None, None));
    assert_eq!((spent.redeem_time, spent.agent.as_str()), (Some(NOW + 10), "agents/web-1.example.com"));
    assert_eq!(s.get_join_token("web").await.unwrap(), spent);
    assert_eq!(s.get_agent("web-1.example.com").await.unwrap(), *agent);
    assert_eq!(
        outbox_actions(s).await[before..],
        [action("RedeemJoinToken", "joinTokens/web"), action("CreateAgent", "agents/web-1.example.com")]
    );

    // Spent: a second redemption finds the first, and writes nothing.
    let again = s.redeem_join_token(&hash(1), &enrolment("other"), NOW + 20, redeem_events).await.unwrap();
    assert_eq!(again, Redemption::AlreadyUsed(spent));
    assert_eq!(s.redeem_join_token(&hash(2), &enrolment("x"), NOW, redeem_events).await.unwrap(), Redemption::Unknown);
    assert_eq!(outbox(s).await.len(), before + 2);
    assert_eq!(s.list_agents(&all_agents()).await.unwrap().len(), 1);
}

async fn expired_and_conflicting_tokens_write_nothing<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    let short = JoinToken { expire_time: NOW + 60, ..token("short", "") };
    s.create_join_token(&short, &hash(1), event("CreateJoinToken", "joinTokens/short")).await.unwrap();
    create_agent(s, "taken").await;
    s.create_join_token(&token("named", "taken"), &hash(2), event("CreateJoinToken", "joinTokens/named"))
        .await
        .unwrap();
    let before = outbox(s).await.len();

    // Expiry is exclusive: at expire_time the token is already dead.
    let expired = s.redeem_join_token(&hash(1), &enrolment("web"), NOW + 60, redeem_events).await.unwrap();
    assert_eq!(expired, Redemption::Expired(short.clone()));
    // The token names an id that an agent already has: refused, all of it.
    let taken = s.redeem_join_token(&hash(2), &enrolment("web"), NOW, redeem_events).await;
    assert_already_exists(taken, "agents/taken");

    assert_eq!(s.get_join_token("short").await.unwrap(), short, "still unused");
    assert_eq!(s.get_join_token("named").await.unwrap(), token("named", "taken"), "still unused");
    let agents: Vec<String> = s.list_agents(&all_agents()).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(agents, ["taken"]);
    assert_eq!(outbox(s).await.len(), before, "no events for refused redemptions");

    // Before it expires, the short token still works.
    let fine = s.redeem_join_token(&hash(1), &enrolment("web"), NOW + 59, redeem_events).await.unwrap();
    assert!(matches!(fine, Redemption::Redeemed { .. }), "{fine:?}");
}

async fn derived_agent_ids_are_made_unique<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    create_agent(s, "web").await;
    let mut ids = Vec::new();
    for n in 1..=3u8 {
        let id = format!("t{n}");
        s.create_join_token(&token(&id, ""), &hash(n), event("CreateJoinToken", &format!("joinTokens/{id}")))
            .await
            .unwrap();
        match s.redeem_join_token(&hash(n), &enrolment("web"), NOW, redeem_events).await.unwrap() {
            Redemption::Redeemed { agent, .. } => ids.push(agent.id),
            other => panic!("expected a redemption, got {other:?}"),
        }
    }
    assert_eq!(ids, ["web-2", "web-3", "web-4"]);
    // A named token gets exactly its name.
    s.create_join_token(&token("named", "db-main"), &hash(9), event("CreateJoinToken", "joinTokens/named"))
        .await
        .unwrap();
    let Redemption::Redeemed { agent, .. } =
        s.redeem_join_token(&hash(9), &enrolment("web"), NOW, redeem_events).await.unwrap()
    else {
        panic!("expected a redemption")
    };
    assert_eq!(agent.id, "db-main");
}

async fn concurrent_redemptions_of_one_token_let_one_win<S: Store>(store: Arc<S>) {
    store.create_join_token(&token("race", ""), &hash(7), event("CreateJoinToken", "joinTokens/race")).await.unwrap();
    let before = outbox(store.as_ref()).await.len();
    let tasks: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            // Each racer claims another host name: only one may become an agent.
            tokio::spawn(async move {
                store.redeem_join_token(&hash(7), &enrolment(&format!("host-{n}")), NOW, redeem_events).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut used = 0;
    for task in tasks {
        match task.await.unwrap().expect("every racer gets an answer") {
            Redemption::Redeemed { agent, .. } => winners.push(agent.id),
            Redemption::AlreadyUsed(token) => {
                used += 1;
                assert!(token.agent.starts_with("agents/host-"), "{token:?}");
            }
            other => panic!("a losing redemption finds the token used, not {other:?}"),
        }
    }
    assert_eq!((winners.len(), used), (1, RACERS - 1), "{winners:?}");
    let agents: Vec<String> = store.list_agents(&all_agents()).await.unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(agents, winners);
    assert_eq!(store.get_join_token("race").await.unwrap().agent, format!("agents/{}", winners[0]));
    assert_eq!(outbox(store.as_ref()).await.len(), before + 2, "the winner's two events, nothing else");
}

fn all_agents() -> AgentQuery {
    AgentQuery { status: None, after: None, limit: 100_000, now: NOW }
}

async fn identity_and_retirement<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    create_agent(s, "edge").await;
    let before = outbox(s).await.len();

    let agent = s
        .record_agent_identity("edge", "0A1B", NOW + 30 * DAY, NOW + 5, event("RecordAgentIdentity", "agents/edge"))
        .await
        .unwrap();
    assert_eq!(
        (agent.identity_serial.as_str(), agent.identity_expire_time, agent.update_time),
        ("0A1B", Some(NOW + 30 * DAY), NOW + 5)
    );
    assert_eq!(agent.display_name, "Agent edge", "the document is untouched");
    assert_not_found(
        s.record_agent_identity("ghost", "01", NOW, NOW, event("RecordAgentIdentity", "agents/ghost")).await,
        "agents/ghost",
    );

    let mut seen_serial = String::new();
    let (retired, first) = s
        .retire_agent("edge", NOW + 10, |a| {
            seen_serial = a.identity_serial.clone();
            event("RetireAgent", &a.name())
        })
        .await
        .unwrap();
    assert!(first);
    assert_eq!(seen_serial, "0A1B", "the event sees the identity it retires");
    assert_eq!((retired.retire_time, retired.update_time), (Some(NOW + 10), NOW + 10));
    let (again, second) = s.retire_agent("edge", NOW + 20, |a| event("RetireAgent", &a.name())).await.unwrap();
    assert!(!second);
    assert_eq!(again, retired, "retiring again changes nothing");
    assert_not_found(s.retire_agent("ghost", NOW, |a| event("RetireAgent", &a.name())).await, "agents/ghost");

    let refused = s
        .record_agent_identity("edge", "02", NOW + 60 * DAY, NOW + 30, event("RecordAgentIdentity", "agents/edge"))
        .await;
    assert!(matches!(&refused, Err(StoreError::FailedPrecondition(m)) if m.contains("retired")), "{refused:?}");
    assert_eq!(s.get_agent("edge").await.unwrap(), retired);
    assert_eq!(
        outbox_actions(s).await[before..],
        [action("RecordAgentIdentity", "agents/edge"), action("RetireAgent", "agents/edge")]
    );

    // An update of the registration keeps the session state.
    let mut renamed = s.get_agent("edge").await.unwrap();
    renamed.display_name = "Renamed".into();
    renamed.update_time = NOW + 40;
    s.update_document(&renamed, event("UpdateAgent", "agents/edge")).await.unwrap();
    assert_eq!(s.get_agent("edge").await.unwrap(), renamed);
}

async fn heartbeats_mark_ten_thousand_agents_in_one_call<S: Store>(store: Arc<S>) {
    const AGENTS: usize = 10_000;
    let ids: Vec<String> = (0..AGENTS).map(|i| format!("host-{i:05}")).collect();
    // Eight writers at a time: setup, not what is measured.
    for chunk in ids.chunks(AGENTS / 8) {
        let tasks: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|id| {
                let store = store.clone();
                tokio::spawn(async move { create_agent(store.as_ref(), &id).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    let s = store.as_ref();
    s.retire_agent(&ids[7], NOW, |a| event("RetireAgent", &a.name())).await.unwrap();
    let before = outbox(s).await.len();

    let mut beats: Vec<Heartbeat> = ids.iter().map(|id| beat(id, "hub-a", "1.0.0", &["file"])).collect();
    beats.push(beat("not-an-agent", "hub-a", "1.0.0", &[]));
    let updated = s.record_heartbeats(&beats, NOW).await.unwrap();
    assert_eq!(updated.len(), AGENTS - 1, "every agent but the retired one; the unknown one is skipped");
    assert!(!updated.contains(&ids[7]) && !updated.iter().any(|id| id == "not-an-agent"));
    assert_eq!(outbox(s).await.len(), before, "heartbeats are not audited");

    let online = s.list_agents(&AgentQuery { status: Some(AgentStatus::Online), ..all_agents() }).await.unwrap();
    assert_eq!(online.len(), AGENTS - 1);
    assert!(online.iter().all(|a| a.last_seen_time == Some(NOW) && a.hub == "hub-a" && a.version == "1.0.0"));
    assert!(online.iter().all(|a| a.capabilities == ["file"]));
    let retired = s.get_agent(&ids[7]).await.unwrap();
    assert_eq!((retired.last_seen_time, retired.hub.as_str()), (None, ""), "a retired agent is not marked seen");

    // Empty fields keep what is recorded; set ones replace it.
    let moved = vec![beat(&ids[0], "", "", &[]), beat(&ids[1], "hub-b", "1.1.0", &["file", "nginx"])];
    assert_eq!(s.record_heartbeats(&moved, NOW + 40).await.unwrap().len(), 2);
    let first = s.get_agent(&ids[0]).await.unwrap();
    assert_eq!(
        (first.last_seen_time, first.hub.as_str(), first.version.as_str(), first.capabilities.clone()),
        (Some(NOW + 40), "hub-a", "1.0.0", vec!["file".to_owned()])
    );
    let second = s.get_agent(&ids[1]).await.unwrap();
    assert_eq!(
        (second.hub.as_str(), second.version.as_str(), second.capabilities.clone()),
        ("hub-b", "1.1.0", vec!["file".to_owned(), "nginx".to_owned()])
    );
    assert_eq!(s.record_heartbeats(&[], NOW).await.unwrap().len(), 0);
}

async fn status_filter_follows_the_thresholds<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    // (id, seconds since last seen; None: never)
    let agents: [(&str, Option<i64>); 7] = [
        ("a-now", Some(0)),
        ("b-90s", Some(90)),
        ("c-91s", Some(91)),
        ("d-300s", Some(300)),
        ("e-301s", Some(301)),
        ("f-never", None),
        ("g-retired", Some(0)),
    ];
    for (id, age) in agents {
        create_agent(s, id).await;
        if let Some(age) = age {
            s.record_heartbeats(&[beat(id, "hub", "", &[])], NOW - age).await.unwrap();
        }
    }
    s.retire_agent("g-retired", NOW, |a| event("RetireAgent", &a.name())).await.unwrap();
    let listed = |status: Option<AgentStatus>, after: Option<&str>, limit: i64| {
        let query = AgentQuery { status, after: after.map(str::to_owned), limit, now: NOW };
        async move { s.list_agents(&query).await.unwrap().into_iter().map(|a| a.id).collect::<Vec<_>>() }
    };
    assert_eq!(listed(Some(AgentStatus::Online), None, 100).await, ["a-now", "b-90s"]);
    assert_eq!(listed(Some(AgentStatus::Stale), None, 100).await, ["c-91s", "d-300s"]);
    assert_eq!(listed(Some(AgentStatus::Offline), None, 100).await, ["e-301s", "f-never"]);
    assert_eq!(listed(Some(AgentStatus::Retired), None, 100).await, ["g-retired"]);
    assert_eq!(listed(None, Some("c-91s"), 3).await, ["d-300s", "e-301s", "f-never"]);
    assert_eq!(listed(Some(AgentStatus::Offline), Some("e-301s"), 100).await, ["f-never"]);
    // The store's filter and the domain's rule agree on every agent.
    for a in s.list_agents(&all_agents()).await.unwrap() {
        let status = a.status(NOW);
        assert!(listed(Some(status), None, 100).await.contains(&a.id), "{} is {status:?}", a.id);
    }
}

conformance!(
    join_tokens_round_trip,
    a_token_redeems_once_into_an_agent,
    expired_and_conflicting_tokens_write_nothing,
    derived_agent_ids_are_made_unique,
    concurrent_redemptions_of_one_token_let_one_win,
    identity_and_retirement,
    heartbeats_mark_ten_thousand_agents_in_one_call,
    status_filter_follows_the_thresholds,
);
