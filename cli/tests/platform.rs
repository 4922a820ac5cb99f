//! The whole platform as an operator runs it: real `certctl server`
//! processes, one or one per role, answering REST, gRPC and gRPC-web.

mod support;

use std::time::Duration;

use certctl_pki::KeyType;
use certctl_pki::generate::CertificateAuthority;
use certctl_proto::audit::audit_service_client::AuditServiceClient;
use certctl_proto::audit::{ListAuditEventsRequest, VerifyChainRequest};
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{ListCertificatesRequest, ListCertificatesResponse};
use prost::Message;
use serde_json::{Value, json};
use support::{Platform, Storage, violated_field};

fn pem_chain(cn: &str, days_left: i64) -> String {
    let ca = CertificateAuthority::new("Platform Test CA", KeyType::EcdsaP256).unwrap();
    let now = certctl_domain::now();
    let leaf = ca.issue_leaf(cn, &[cn.to_owned()], KeyType::EcdsaP256, now - 86_400, 86_400 * (days_left + 1)).unwrap();
    format!("{}{}", leaf.certificate_pem, ca.certificate_pem)
}

/// Audit events arrive through the outbox relay, so wait for them (bounded).
async fn audit_events_for(platform: &Platform, resource: &str, at_least: usize) -> Vec<Value> {
    for _ in 0..200 {
        let (status, body) =
            platform.rest("GET", &format!("/api/v1/auditEvents?resource={resource}&pageSize=100"), None).await;
        assert_eq!(status, 200, "{body}");
        let events = body["auditEvents"].as_array().cloned().unwrap_or_default();
        if events.len() >= at_least {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {at_least} audit events for {resource}; logs:\n{}", platform.logs());
}

/// The API behaviour every deployment shape must show.
async fn exercise(platform: &Platform) {
    // Liveness, readiness and the API description.
    assert_eq!(platform.rest("GET", "/healthz", None).await.0, 200);
    let (status, openapi) = platform.rest("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(openapi["paths"]["/api/v1/certificates"]["get"].is_object());
    assert!(openapi["paths"]["/api/v1/auditEvents"]["get"].is_object());

    // People and the certificate that belongs to them.
    let (status, team) = platform.rest("POST", "/api/v1/teams?teamId=web", Some(json!({"displayName": "Web"}))).await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["team"]["name"], "teams/web");
    let (status, _) = platform
        .rest("POST", "/api/v1/owners?ownerId=wendy", Some(json!({"displayName": "Wendy", "team": "teams/web"})))
        .await;
    assert_eq!(status, 200);
    let certificate = json!({
        "commonName": "shop.example.com",
        "subjectAltNames": ["shop.example.com", "www.shop.example.com"],
        "owner": "owners/wendy",
        "team": "teams/web",
        "environment": "production",
    });
    let (status, created) =
        platform.rest("POST", "/api/v1/certificates?certificateId=shop", Some(certificate.clone())).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["certificate"]["state"], "CERTIFICATE_STATE_PENDING");

    // Mistakes get precise errors and change nothing.
    let (status, body) = platform.rest("POST", "/api/v1/certificates?certificateId=shop", Some(certificate)).await;
    assert_eq!((status, body["status"].as_str()), (409, Some("ALREADY_EXISTS")), "{body}");
    let (status, body) = platform.rest("GET", "/api/v1/certificates/nope", None).await;
    assert_eq!((status, body["status"].as_str()), (404, Some("NOT_FOUND")), "{body}");
    let (status, body) = platform
        .rest("PATCH", "/api/v1/certificates/shop?updateMask=colour", Some(json!({"environment": "staging"})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(violated_field(&body).as_deref(), Some("update_mask"), "{body}");
    let (status, body) = platform.rest("GET", "/api/v1/certificates?pageSize=-1", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(violated_field(&body).as_deref(), Some("page_size"), "{body}");
    let (status, body) = platform
        .rest(
            "POST",
            "/api/v1/certificates/shop/versions",
            Some(json!({"pemChain": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(violated_field(&body).as_deref(), Some("pem_chain"), "{body}");
    let (status, body) = platform.rest("POST", "/api/v1/certificates", Some(json!({"commonName": 7}))).await;
    assert!(status == 400, "a malformed body is the caller's mistake: {status} {body}");
    let (_, got) = platform.rest("GET", "/api/v1/certificates/shop", None).await;
    assert_eq!(got["certificate"]["environment"], "production");
    assert_eq!(got["certificate"]["state"], "CERTIFICATE_STATE_PENDING");

    // A real chain becomes the current version.
    let (status, version) = platform
        .rest(
            "POST",
            "/api/v1/certificates/shop/versions",
            Some(json!({"pemChain": pem_chain("shop.example.com", 200)})),
        )
        .await;
    assert_eq!(status, 200, "{version}");
    assert_eq!(version["certificateVersion"]["name"], "certificates/shop/versions/1");
    let (status, updated) = platform
        .rest("PATCH", "/api/v1/certificates/shop?updateMask=environment", Some(json!({"environment": "staging"})))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["certificate"]["environment"], "staging");
    assert_eq!(updated["certificate"]["state"], "CERTIFICATE_STATE_ACTIVE");

    // Filters and pagination, over REST and native gRPC alike.
    for (id, days) in [("soon", 5), ("later", 100), ("expired", -2)] {
        let (status, _) = platform
            .rest(
                "POST",
                &format!("/api/v1/certificates?certificateId={id}"),
                Some(json!({"commonName": format!("{id}.example.com"), "team": "teams/web"})),
            )
            .await;
        assert_eq!(status, 200);
        let chain = pem_chain(&format!("{id}.example.com"), days);
        let (status, body) = platform
            .rest("POST", &format!("/api/v1/certificates/{id}/versions"), Some(json!({"pemChain": chain})))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, expiring) = platform.rest("GET", "/api/v1/certificates?state=CERTIFICATE_STATE_EXPIRING", None).await;
    let names: Vec<&str> =
        expiring["certificates"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["certificates/soon"]);
    let (_, found) = platform.rest("GET", "/api/v1/certificates?search=WWW.SHOP", None).await;
    assert_eq!(found["certificates"][0]["name"], "certificates/shop");
    let (_, first) = platform.rest("GET", "/api/v1/certificates?pageSize=2&team=teams/web", None).await;
    assert_eq!(first["certificates"].as_array().unwrap().len(), 2);
    let token = first["nextPageToken"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    let (status, body) =
        platform.rest("GET", &format!("/api/v1/certificates?pageSize=2&pageToken={token}&environment=x"), None).await;
    assert_eq!(status, 400, "a token from another query is refused: {body}");
    assert_eq!(violated_field(&body).as_deref(), Some("page_token"));

    let channel = platform.channel().await;
    let mut inventory = InventoryServiceClient::new(channel.clone());
    let listed = inventory
        .list_certificates(ListCertificatesRequest {
            page_size: 2,
            page_token: token,
            team: "teams/web".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.certificates.len(), 2, "the second page holds the other two of four");

    // gRPC-web, as the GUI's browser speaks it.
    let request = ListCertificatesRequest { page_size: 1, search: "soon".into(), ..Default::default() };
    let mut frame = vec![0u8];
    frame.extend((request.encoded_len() as u32).to_be_bytes());
    frame.extend(request.encode_to_vec());
    let (status, headers, body) = platform
        .raw("POST", "/certctl.inventory.v1.InventoryService/ListCertificates", "application/grpc-web+proto", frame)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/grpc-web"));
    assert_eq!(body[0], 0, "the first frame is a message");
    let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    let answer = ListCertificatesResponse::decode(&body[5..5 + len]).unwrap();
    assert_eq!(answer.certificates[0].name, "certificates/soon");
    let trailers = String::from_utf8_lossy(&body[5 + len + 5..]).to_lowercase();
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // grpc.health.v1 and server reflection on the public port.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let check = tonic_health::pb::HealthCheckRequest { service: "certctl.inventory.v1.InventoryService".into() };
    let mut serving = false;
    for _ in 0..100 {
        let status = health.check(check.clone()).await.unwrap().into_inner().status;
        if status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 {
            serving = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(serving, "the gateway reports the inventory SERVING");
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let ask = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::once(ask))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("reflection answers ListServices with a service list");
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(services.contains(&"certctl.inventory.v1.InventoryService".to_owned()), "{services:?}");
    assert!(services.contains(&"certctl.audit.v1.AuditService".to_owned()), "{services:?}");
    assert!(!services.iter().any(|s| s.contains("AuditIngest")), "internal APIs are not advertised: {services:?}");

    // Every mutation reached the audit chain exactly once, and the chain holds.
    let events = audit_events_for(platform, "certificates/shop", 2).await;
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["inventory.UpdateCertificate", "inventory.CreateCertificate"],
        "newest first, refused calls absent"
    );
    let versions = audit_events_for(platform, "certificates/shop/", 1).await;
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["action"], "inventory.CreateCertificateVersion");
    assert_eq!(versions[0]["resource"], "certificates/shop/versions/1");
    assert_eq!(events[0]["actor"], "anonymous", "the gateway, not the caller, names the actor");
    let mut audit = AuditServiceClient::new(channel);
    let report = audit.verify_chain(VerifyChainRequest {}).await.unwrap().into_inner();
    assert!(report.valid, "{report:?}");
    assert!(report.events_checked >= 10, "{report:?}");

    // Delete, and the name is gone.
    assert_eq!(platform.rest("DELETE", "/api/v1/certificates/later", None).await.0, 200);
    assert_eq!(platform.rest("GET", "/api/v1/certificates/later", None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_process_on_sqlite_serves_the_api() {
    let mut platform = Platform::single(&Storage::Sqlite, &[]).await;
    exercise(&platform).await;
    let status = platform.processes[0].terminate();
    assert!(status.success(), "SIGTERM is a clean shutdown: {status}\n{}", platform.logs());
    assert!(platform.logs().contains("stopped"));
}

#[tokio::test(flavor = "multi_thread")]
async fn one_process_on_postgres_serves_the_api() {
    let storage = Storage::from_env().await;
    let platform = Platform::single(&storage, &[]).await;
    exercise(&platform).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_processes_pass_the_same_tests_and_keep_events_through_an_audit_outage() {
    let storage = Storage::from_env().await;
    let mut platform = Platform::distributed(&storage).await;
    exercise(&platform).await;

    // Audit goes down: mutations still commit, their events wait in the outbox.
    let status = platform.processes[0].terminate();
    assert!(status.success());
    let (status, body) = platform
        .rest(
            "POST",
            "/api/v1/certificates?certificateId=during-outage",
            Some(json!({"commonName": "outage.example.com"})),
        )
        .await;
    assert_eq!(status, 200, "the inventory commits without the audit service: {body}");
    let (status, _) = platform.rest("GET", "/api/v1/auditEvents", None).await;
    assert_eq!(status, 503, "audit reads are unavailable while it is down");

    // Audit comes back on the same address and storage: the event arrives, once.
    platform.restart(0);
    platform.wait_ready().await;
    let events = audit_events_for(&platform, "certificates/during-outage", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = audit_events_for(&platform, "certificates/during-outage", 1).await;
    assert_eq!((events.len(), again.len()), (1, 1), "exactly once in the chain");
    let mut audit = AuditServiceClient::new(platform.channel().await);
    assert!(audit.verify_chain(VerifyChainRequest {}).await.unwrap().into_inner().valid);
    let listed = audit
        .list_audit_events(ListAuditEventsRequest {
            resource: "certificates/during-outage".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.audit_events.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_seeds_a_realistic_estate_once() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::SqliteAt(dir.path().to_owned());
    for round in 0..2 {
        let platform = Platform::single(&storage, &["--demo"]).await;
        let mut page = None;
        for _ in 0..300 {
            let (_, body) = platform.rest("GET", "/api/v1/certificates?pageSize=100", None).await;
            if body["certificates"].as_array().is_some_and(|c| c.len() >= 40) {
                page = Some(body);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = page
            .unwrap_or_else(|| panic!("round {round}: the demo never reached 40 certificates\n{}", platform.logs()));
        let certificates = page["certificates"].as_array().unwrap();
        assert_eq!(certificates.len(), 40, "round {round}: seeded once, not again");
        for state in ["PENDING", "ACTIVE", "EXPIRING", "EXPIRED"] {
            let n = certificates.iter().filter(|c| c["state"] == format!("CERTIFICATE_STATE_{state}")).count();
            assert!(n >= 3, "round {round}: only {n} {state} certificates");
        }
        let (_, summary) = platform.rest("GET", "/api/v1/certificates:summarize", None).await;
        assert_eq!(
            summary["total"].as_i64().or_else(|| summary["total"].as_str().and_then(|s| s.parse().ok())),
            Some(40),
            "{summary}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_unreachable_at_start_up_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let unused = support::free_port();
    let output = std::process::Command::new(support::BIN)
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &format!("postgres://certctl@127.0.0.1:{unused}/certctl")])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
    assert!(stderr.contains("--database-url"), "the message says what to check: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_imports_pem_files_and_verifies_the_audit_chain() {
    let platform = Platform::single(&Storage::Sqlite, &[]).await;
    let pems = platform.dir.path().join("pems");
    std::fs::create_dir_all(pems.join("nested")).unwrap();
    std::fs::write(pems.join("a.pem"), pem_chain("import-a.example.com", 50)).unwrap();
    std::fs::write(pems.join("nested/b.crt"), pem_chain("import-b.example.com", 10)).unwrap();
    std::fs::write(pems.join("garbage.pem"), "this is not PEM\n").unwrap();
    std::fs::write(pems.join("notes.txt"), "ignored: not a certificate file name\n").unwrap();

    let output = std::process::Command::new(support::BIN)
        .args(["import", pems.to_str().unwrap(), "--environment", "production", "--server", &platform.url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "one file failed: {stdout}");
    assert!(stdout.contains("2 imported, 1 failed"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("garbage.pem") && !l.contains("imported as")), "{stdout}");
    assert!(!stdout.contains("notes.txt"), "{stdout}");
    let (_, listed) = platform.rest("GET", "/api/v1/certificates?environment=production", None).await;
    assert_eq!(listed["certificates"].as_array().unwrap().len(), 2, "{listed}");

    audit_events_for(&platform, "certificates/", 2).await;
    let verify =
        std::process::Command::new(support::BIN).args(["audit", "verify", "--server", &platform.url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{stdout}");
    assert!(stdout.contains("audit chain intact"), "{stdout}");

    let export = std::process::Command::new(support::BIN)
        .args(["audit", "export", "--format", "csv", "--server", &platform.url])
        .output()
        .unwrap();
    assert!(export.status.success());
    let csv = String::from_utf8_lossy(&export.stdout);
    assert!(csv.lines().count() >= 3, "a header and at least two events: {csv}");
    assert!(
        csv.contains("inventory.ImportCertificates") || csv.contains("inventory.CreateCertificateVersion"),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_lost_mid_run_answers_unavailable_then_recovers() {
    let Storage::Postgres(url) = Storage::from_env().await else {
        eprintln!("note: needs CERTCTL_TEST_DATABASE_URL; skipped");
        return;
    };
    // Route the server's database connections through a proxy the test controls.
    let (head, rest) = url.split_once('@').unwrap();
    let (host_port, database) = rest.split_once('/').unwrap();
    let target: std::net::SocketAddr = host_port.parse().unwrap();
    let proxy = support::TcpProxy::start(target).await;
    let proxied = format!("{head}@127.0.0.1:{}/{database}", proxy.port);
    let platform = Platform::single(&Storage::Postgres(proxied), &[]).await;
    assert_eq!(platform.rest("POST", "/api/v1/teams?teamId=ops", Some(json!({}))).await.0, 200);

    proxy.cut();
    let (status, body) = platform.rest("GET", "/api/v1/teams", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "UNAVAILABLE");
    let (status, headers, _) = platform.raw("GET", "/api/v1/teams/ops", "application/json", Vec::new()).await.unwrap();
    assert_eq!(status, 503);
    assert!(headers.contains_key("retry-after"), "clients are told to retry: {headers:?}");
    let (status, body) = platform.rest("POST", "/api/v1/teams?teamId=lost", Some(json!({}))).await;
    assert_eq!(status, 503, "{body}");
    let mut not_ready = false;
    for _ in 0..100 {
        if platform.rest("GET", "/readyz", None).await.0 == 503 {
            not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(not_ready, "readiness follows the database");

    proxy.restore();
    let mut recovered = None;
    for _ in 0..100 {
        let (status, body) = platform.rest("GET", "/api/v1/teams", None).await;
        if status == 200 {
            recovered = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let teams = recovered.expect("the platform recovers once the database is back");
    let names: Vec<&str> = teams["teams"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["teams/ops"], "the write refused during the outage left nothing behind");
}

/// A one-request-at-a-time HTTP receiver on loopback that answers 202 with a
/// body of its own and hands each request (head and body) to the test.
async fn webhook_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/certctl", listener.local_addr().unwrap());
    let (sender, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then as many body bytes as Content-Length says.
            let complete = |r: &[u8]| {
                let text = String::from_utf8_lossy(r);
                let Some(end) = text.find("\r\n\r\n") else { return false };
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                r.len() >= end + 4 + length
            };
            while !complete(&request) {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let body = "accepted by the loopback receiver";
            let answer = format!(
                "HTTP/1.1 202 Accepted\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            let _ = sender.send(String::from_utf8_lossy(&request).into_owned());
        }
    });
    (url, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_channel_is_created_and_tested_against_a_real_receiver() {
    let platform = Platform::single(&Storage::Sqlite, &[]).await;
    let (url, mut received) = webhook_receiver().await;
    let secret = "a-shared-signing-key-for-tests";
    let created = std::process::Command::new(support::BIN)
        .args(["channel", "create", "loopback", "--kind", "webhook", "--url", &url, "--display-name", "Loopback"])
        .env("CERTCTL_SERVER", &platform.url)
        .env("CERTCTL_CHANNEL_SECRET", secret)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert_eq!(String::from_utf8_lossy(&created.stdout).trim(), "created channels/loopback (webhook)");

    // The secret is sealed, never returned.
    let listed = platform.cli(&["channel", "list", "--output", "json"]).ok();
    assert!(!listed.stdout.contains(secret), "{listed}");
    let channel: Value = serde_json::from_str(listed.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(channel["name"], "channels/loopback");
    assert_eq!(channel["hasSecret"], true);
    assert_eq!(channel["webhook"]["url"], url.as_str());
    let table = platform.cli(&["channel", "list", "--kind", "webhook"]).ok();
    assert!(table.stdout.lines().any(|l| l.starts_with("channels/loopback") && l.contains("sealed")), "{table}");
    assert_eq!(platform.cli(&["channel", "list", "--kind", "slack", "-q"]).ok().stdout, "");

    // `test` prints what the receiver really answered.
    let tested = platform.cli(&["channel", "test", "loopback"]).ok();
    assert_eq!(tested.stdout.trim(), "channels/loopback delivered: HTTP 202: accepted by the loopback receiver");
    let request = tokio::time::timeout(Duration::from_secs(10), received.recv()).await.unwrap().unwrap();
    assert!(request.starts_with("POST /hooks/certctl HTTP/1.1\r\n"), "{request}");
    let lower = request.to_ascii_lowercase();
    assert!(lower.contains("\r\nx-certctl-signature: v1="), "{request}");
    assert!(lower.contains("\r\nidempotency-key: "), "{request}");
    assert!(request.contains("certctl test notification"), "{request}");
    let json = platform.cli(&["channel", "test", "channels/loopback", "--output", "json"]).ok();
    let answer: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(answer["delivered"], true);
    assert_eq!(answer["status"], 202);

    // A receiver that is gone: not delivered, exit 1, and the reason.
    drop(received);
    let port = support::free_port();
    let gone = format!("http://127.0.0.1:{port}/hooks/certctl");
    let created = std::process::Command::new(support::BIN)
        .args(["channel", "create", "gone", "--kind", "webhook", "--url", &gone])
        .env("CERTCTL_SERVER", &platform.url)
        .env("CERTCTL_CHANNEL_SECRET", secret)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let failed = platform.cli(&["channel", "test", "gone"]);
    assert_eq!(failed.code, Some(1), "{failed}");
    assert!(failed.stdout.starts_with("channels/gone not delivered: cannot reach the endpoint"), "{failed}");

    // A bad configuration names its fields over REST too, as a 400.
    let (status, body) =
        platform.rest("POST", "/api/v1/channels?channelId=bad", Some(json!({"webhook": {"url": "ftp://x"}}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("signing_secret"), "{body}");
}
