//! Agents through the gRPC edge: enrolment with join tokens, identity,
//! heartbeats, status as the clock moves, and retirement.

mod support;

use certctl_inventory::store::Outbox;
use certctl_proto::inventory as pb;
use support::{DAY, Served, T0, assert_code, expect_invalid, ts};
use tonic::Code;

fn token_request(join_token: pb::JoinToken, id: &str) -> pb::CreateJoinTokenRequest {
    pb::CreateJoinTokenRequest { join_token: Some(join_token), join_token_id: id.into() }
}

async fn create_token(srv: &Served, id: &str, join_token: pb::JoinToken) -> (pb::JoinToken, String) {
    let r = srv.client.clone().create_join_token(token_request(join_token, id)).await.expect("CreateJoinToken");
    let r = r.into_inner();
    (r.join_token.expect("a token"), r.secret)
}

fn redeem(secret: &str, hostname: &str) -> pb::RedeemJoinTokenRequest {
    pb::RedeemJoinTokenRequest {
        secret: secret.into(),
        hostname: hostname.into(),
        version: "0.4.0".into(),
        capabilities: vec!["file".into(), "nginx".into()],
    }
}

async fn get_agent(srv: &Served, name: &str) -> pb::Agent {
    let r = srv.client.clone().get_agent(pb::GetAgentRequest { name: name.into() }).await.expect("GetAgent");
    r.into_inner().agent.expect("an agent")
}

async fn create_agent(srv: &Served, id: &str) {
    let agent = pb::Agent { display_name: format!("Agent {id}"), ..Default::default() };
    let request = pb::CreateAgentRequest { agent: Some(agent), agent_id: id.into() };
    srv.client.clone().create_agent(request).await.expect("CreateAgent");
}

fn session(agent: &str, hub: &str) -> pb::AgentSession {
    pb::AgentSession { agent: agent.into(), hub: hub.into(), ..Default::default() }
}

fn unauthenticated<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>) -> String {
    match result {
        Err(status) => {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            status.message().to_owned()
        }
        Ok(r) => panic!("expected UNAUTHENTICATED, got {:?}", r.into_inner()),
    }
}

#[tokio::test]
async fn a_join_token_enrols_one_agent() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let labels = [("site".to_owned(), "fra".to_owned())].into_iter().collect();
    let (token, secret) = create_token(
        &srv,
        "",
        pb::JoinToken {
            display_name: "Frankfurt web".into(),
            labels,
            ttl: Some(pbjson_types::Duration { seconds: 3600, nanos: 0 }),
            ..Default::default()
        },
    )
    .await;
    assert!(token.name.starts_with("joinTokens/") && token.name.len() > "joinTokens/".len(), "{}", token.name);
    assert!(secret.starts_with("cjt_") && secret.len() == 47, "{secret}");
    assert_eq!(token.expire_time, ts(T0 + 3600));
    assert_eq!((token.create_time, token.redeem_time, token.agent.as_str()), (ts(T0), None, ""));
    let listed = c.list_join_tokens(pb::ListJoinTokensRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.join_tokens, std::slice::from_ref(&token));
    assert!(!format!("{listed:?}").contains(&secret[4..]), "the secret is shown once, at creation");

    srv.set_now(T0 + 60);
    let agent = c.redeem_join_token(redeem(&secret, "web-1.example.com")).await.unwrap().into_inner().agent.unwrap();
    assert_eq!(agent.name, "agents/web-1.example.com");
    assert_eq!((agent.display_name.as_str(), agent.hostname.as_str()), ("Frankfurt web", "web-1.example.com"));
    assert_eq!(agent.labels.get("site").map(String::as_str), Some("fra"));
    assert_eq!((agent.version.as_str(), agent.capabilities.clone()), ("0.4.0", vec!["file".into(), "nginx".into()]));
    assert_eq!(agent.status, pb::AgentStatus::Offline as i32, "enrolled, not yet heard from");
    let spent = c.get_join_token(pb::GetJoinTokenRequest { name: token.name.clone() }).await.unwrap().into_inner();
    let spent = spent.join_token.unwrap();
    assert_eq!((spent.redeem_time, spent.agent.as_str()), (ts(T0 + 60), "agents/web-1.example.com"));

    let again = unauthenticated(c.redeem_join_token(redeem(&secret, "web-2.example.com")).await);
    assert!(
        again.contains(&token.name) && again.contains("already used") && again.contains("agents/web-1.example.com")
    );
    assert_eq!(unauthenticated(c.redeem_join_token(redeem("cjt_forged", "x")).await), "join token is not valid");
    let forged = format!("cjt_{}", "A".repeat(43));
    assert_eq!(unauthenticated(c.redeem_join_token(redeem(&forged, "x")).await), "join token is not valid");
    let agents = c.list_agents(pb::ListAgentsRequest::default()).await.unwrap().into_inner().agents;
    assert_eq!(agents.len(), 1, "refused redemptions create nothing");

    c.delete_join_token(pb::DeleteJoinTokenRequest { name: token.name.clone() }).await.unwrap();
    assert_code(c.get_join_token(pb::GetJoinTokenRequest { name: token.name }).await, Code::NotFound);
}

#[tokio::test]
async fn expired_tokens_say_when_they_expired() {
    let srv = Served::start().await;
    let (token, secret) =
        create_token(&srv, "short", pb::JoinToken { expire_time: ts(T0 + 600), ..Default::default() }).await;
    assert_eq!(token.name, "joinTokens/short");
    srv.set_now(T0 + 600);
    let before = srv.outbox_len().await;
    let message = unauthenticated(srv.client.clone().redeem_join_token(redeem(&secret, "web")).await);
    // T0 + 600 s, in RFC 3339.
    assert_eq!(message, "join token joinTokens/short expired at 2025-06-15T15:16:40Z");
    assert_eq!(srv.outbox_len().await, before);
}

#[tokio::test]
async fn join_token_and_enrolment_refusals_name_their_fields() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let ttl = |seconds| Some(pbjson_types::Duration { seconds, nanos: 0 });
    let cases = [
        ("", pb::JoinToken { ttl: ttl(31 * DAY), ..Default::default() }, "join_token.ttl"),
        ("", pb::JoinToken { ttl: ttl(-1), ..Default::default() }, "join_token.ttl"),
        ("", pb::JoinToken { ttl: ttl(60), expire_time: ts(T0 + 60), ..Default::default() }, "join_token.ttl"),
        ("", pb::JoinToken { expire_time: ts(T0 - 1), ..Default::default() }, "join_token.expire_time"),
        ("Bad_Id", pb::JoinToken::default(), "join_token_id"),
        ("", pb::JoinToken { agent_id: "Not An Id".into(), ..Default::default() }, "join_token.agent_id"),
        ("", pb::JoinToken { display_name: "x".repeat(201), ..Default::default() }, "join_token.display_name"),
    ];
    for (id, token, field) in cases {
        expect_invalid(c.create_join_token(token_request(token, id)).await, field);
    }
    expect_invalid(c.create_join_token(pb::CreateJoinTokenRequest::default()).await, "join_token");

    create_agent(&srv, "taken").await;
    let named = pb::JoinToken { agent_id: "taken".into(), ..Default::default() };
    expect_invalid(c.create_join_token(token_request(named, "")).await, "join_token.agent_id");

    let (_, secret) = create_token(&srv, "good", pb::JoinToken::default()).await;
    expect_invalid(c.redeem_join_token(redeem(&secret, "")).await, "hostname");
    expect_invalid(c.redeem_join_token(redeem(&secret, "*.example.com")).await, "hostname");
    let bad_caps = pb::RedeemJoinTokenRequest { capabilities: vec!["NGINX".into()], ..redeem(&secret, "web") };
    expect_invalid(c.redeem_join_token(bad_caps).await, "capabilities[0]");
    // None of that spent the token.
    c.redeem_join_token(redeem(&secret, "web")).await.expect("the token still works");
}

#[tokio::test]
async fn status_follows_heartbeats_and_the_clock() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    for id in ["a", "b", "c"] {
        create_agent(&srv, id).await;
    }
    c.record_agent_sessions(pb::RecordAgentSessionsRequest {
        sessions: vec![
            pb::AgentSession {
                version: "1.2.3".into(),
                capabilities: vec!["file".into()],
                ..session("agents/a", "hub-1")
            },
            session("agents/b", "hub-2"),
            session("agents/ghost", "hub-2"),
        ],
    })
    .await
    .map(|answer| assert_eq!(answer.into_inner().refused_agents, ["agents/ghost"], "named for its hub to drop"))
    .expect("unknown agents are skipped, not refused");
    let a = get_agent(&srv, "agents/a").await;
    assert_eq!((a.status, a.last_seen_time), (pb::AgentStatus::Online as i32, ts(T0)));
    assert_eq!((a.hub.as_str(), a.version.as_str(), a.capabilities.clone()), ("hub-1", "1.2.3", vec!["file".into()]));

    let by_status = |status: pb::AgentStatus| {
        let mut c = c.clone();
        async move {
            let r = c.list_agents(pb::ListAgentsRequest { status: status as i32, ..Default::default() }).await.unwrap();
            r.into_inner().agents.into_iter().map(|a| a.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(by_status(pb::AgentStatus::Online).await, ["agents/a", "agents/b"]);
    assert_eq!(by_status(pb::AgentStatus::Offline).await, ["agents/c"]);
    srv.set_now(T0 + 91);
    assert_eq!(by_status(pb::AgentStatus::Stale).await, ["agents/a", "agents/b"]);
    assert_eq!(get_agent(&srv, "agents/b").await.status, pb::AgentStatus::Stale as i32);
    srv.set_now(T0 + 301);
    assert_eq!(by_status(pb::AgentStatus::Offline).await, ["agents/a", "agents/b", "agents/c"]);
    assert!(by_status(pb::AgentStatus::Online).await.is_empty());

    // A page token belongs to its filter.
    let first = c
        .list_agents(pb::ListAgentsRequest {
            page_size: 1,
            status: pb::AgentStatus::Offline as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.agents.len(), 1);
    let replay = pb::ListAgentsRequest { page_token: first.next_page_token.clone(), ..Default::default() };
    expect_invalid(c.list_agents(replay).await, "page_token");
    let next = pb::ListAgentsRequest {
        page_token: first.next_page_token,
        status: pb::AgentStatus::Offline as i32,
        ..Default::default()
    };
    assert_eq!(c.list_agents(next).await.unwrap().into_inner().agents.len(), 2);

    expect_invalid(c.list_agents(pb::ListAgentsRequest { status: 99, ..Default::default() }).await, "status");
    let bad = pb::RecordAgentSessionsRequest { sessions: vec![session("agents/a", "hub"), session("teams/x", "hub")] };
    expect_invalid(c.record_agent_sessions(bad).await, "sessions[1].agent");
}

#[tokio::test]
async fn identity_and_retirement() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    create_agent(&srv, "edge").await;
    let identity = |serial: &str| pb::RecordAgentIdentityRequest {
        agent: "agents/edge".into(),
        identity_serial: serial.into(),
        identity_expire_time: ts(T0 + 30 * DAY),
    };
    let before = srv.outbox_len().await;
    let agent = c.record_agent_identity(identity("0a:ff")).await.unwrap().into_inner().agent.unwrap();
    assert_eq!((agent.identity_serial.as_str(), agent.identity_expire_time), ("0AFF", ts(T0 + 30 * DAY)));
    expect_invalid(c.record_agent_identity(identity("zz")).await, "identity_serial");
    let no_expiry = pb::RecordAgentIdentityRequest { identity_expire_time: None, ..identity("01") };
    expect_invalid(c.record_agent_identity(no_expiry).await, "identity_expire_time");
    let ghost = pb::RecordAgentIdentityRequest { agent: "agents/ghost".into(), ..identity("01") };
    assert_code(c.record_agent_identity(ghost).await, Code::NotFound);

    srv.set_now(T0 + 100);
    let retire = || pb::RetireAgentRequest { name: "agents/edge".into() };
    let retired = c.retire_agent(retire()).await.unwrap().into_inner().agent.unwrap();
    assert_eq!((retired.status, retired.retire_time), (pb::AgentStatus::Retired as i32, ts(T0 + 100)));
    srv.set_now(T0 + 200);
    let again = c.retire_agent(retire()).await.unwrap().into_inner().agent.unwrap();
    assert_eq!(again, retired, "retiring twice changes nothing");
    assert_code(c.record_agent_identity(identity("02")).await, Code::FailedPrecondition);
    assert_code(c.retire_agent(pb::RetireAgentRequest { name: "agents/ghost".into() }).await, Code::NotFound);
    expect_invalid(c.retire_agent(pb::RetireAgentRequest { name: "edge".into() }).await, "name");

    // Two audited changes: the identity, the retirement (with the serial it retired).
    let events = srv.store.outbox_batch(100).await.unwrap();
    let events: Vec<_> = events[before..].iter().map(|e| (e.event.action.as_str(), e.event.details.clone())).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "inventory.RecordAgentIdentity");
    assert_eq!((events[1].0, &events[1].1["identity_serial"]), ("inventory.RetireAgent", &serde_json::json!("0AFF")));

    // Retiring leaves the registration editable, and an update keeps the session state.
    let patch = pb::Agent { name: "agents/edge".into(), display_name: "Old edge".into(), ..Default::default() };
    let updated = c.update_agent(pb::UpdateAgentRequest { agent: Some(patch), update_mask: None }).await.unwrap();
    let updated = updated.into_inner().agent.unwrap();
    assert_eq!((updated.display_name.as_str(), updated.identity_serial.as_str()), ("Old edge", "0AFF"));
    assert_eq!(updated.retire_time, ts(T0 + 100));
}

#[tokio::test]
async fn a_target_needs_an_agent_that_can_deploy_to_it() {
    let srv = Served::start().await;
    let mut c = srv.client.clone();
    let (_, secret) = create_token(&srv, "t1", pb::JoinToken::default()).await;
    let agent = c.redeem_join_token(redeem(&secret, "web-01")).await.expect("enrolled").into_inner().agent.unwrap();
    assert_eq!(agent.name, "agents/web-01");
    let target = |config: pb::target::Config| pb::Target {
        agent: "agents/web-01".into(),
        config: Some(config),
        ..Default::default()
    };
    let web = pb::WebServerTargetConfig {
        certificate_path: "/etc/tls/web.crt".into(),
        key_path: "/etc/tls/web.key".into(),
        ..Default::default()
    };
    let create = |id: &str, config| pb::CreateTargetRequest { target: Some(target(config)), target_id: id.into() };
    c.create_target(create("nginx", pb::target::Config::Nginx(web.clone()))).await.expect("it deploys to nginx");
    let refused = c.create_target(create("lb", pb::target::Config::Haproxy(web.clone()))).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("cannot deploy to haproxy targets: it reports file, nginx"), "{refused:?}");

    c.retire_agent(pb::RetireAgentRequest { name: "agents/web-01".into() }).await.expect("retired");
    let retired = c.create_target(create("again", pb::target::Config::Nginx(web))).await.unwrap_err();
    assert!(retired.message().contains("retired"), "{retired:?}");
    let unknown = pb::CreateTargetRequest {
        target: Some(pb::Target {
            agent: "agents/nobody".into(),
            ..target(pb::target::Config::File(pb::FileTargetConfig { directory: "/srv".into(), ..Default::default() }))
        }),
        target_id: "x".into(),
    };
    expect_invalid(c.create_target(unknown).await, "target.agent");
}
