//! `--demo`: seeds an empty inventory with a realistic estate through the
//! inventory's public gRPC API, so the seed goes through the same validation
//! and audit trail as any other caller's data.

use std::time::Duration;

use anyhow::Context as _;
use certctl_pki::KeyType;
use certctl_pki::generate::CertificateAuthority;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{self as pb, target::Config};
use tonic::transport::Channel;

const DAY: i64 = 86_400;

struct Estate {
    id: &'static str,
    common_name: &'static str,
    extra_sans: &'static [&'static str],
    owner: &'static str,
    team: &'static str,
    environment: &'static str,
    /// Days until the current version expires; `None` leaves it pending.
    days_left: Option<i64>,
    lifetime_days: i64,
    policy: &'static str,
    targets: &'static [&'static str],
}

const fn cert(
    id: &'static str,
    common_name: &'static str,
    owner: &'static str,
    team: &'static str,
    environment: &'static str,
    days_left: Option<i64>,
) -> Estate {
    Estate {
        id,
        common_name,
        extra_sans: &[],
        owner,
        team,
        environment,
        days_left,
        lifetime_days: 90,
        policy: "standard",
        targets: &[],
    }
}

/// About forty certificates, expiries spread from a month ago to a year out.
const ESTATE: &[Estate] = &[
    Estate {
        extra_sans: &["example.com"],
        targets: &["web-01-nginx", "web-02-apache"],
        lifetime_days: 365,
        ..cert("www", "www.example.com", "alice", "platform", "production", Some(212))
    },
    Estate {
        targets: &["lb-01-haproxy"],
        ..cert("api-gateway", "api.example.com", "alice", "platform", "production", Some(24))
    },
    cert("status-page", "status.example.com", "erin", "platform", "production", Some(61)),
    cert("grafana", "grafana.internal.example.com", "erin", "platform", "production", Some(5)),
    cert("prometheus", "prometheus.internal.example.com", "erin", "platform", "production", Some(-3)),
    cert("vault", "vault.internal.example.com", "alice", "platform", "production", Some(13)),
    Estate {
        lifetime_days: 365,
        ..cert("ldap", "ldap.internal.example.com", "carol", "identity", "production", Some(340))
    },
    Estate {
        extra_sans: &["login.example.com"],
        targets: &["web-01-nginx"],
        ..cert("sso", "sso.example.com", "carol", "identity", "production", Some(41))
    },
    cert("idp-staging", "sso.staging.example.com", "carol", "identity", "staging", Some(2)),
    cert("radius", "radius.internal.example.com", "carol", "identity", "production", Some(-30)),
    Estate {
        targets: &["lb-01-haproxy"],
        ..cert("payments-api", "api.payments.example.com", "bob", "payments", "production", Some(33))
    },
    cert("checkout", "checkout.example.com", "bob", "payments", "production", Some(8)),
    cert("payments-webhooks", "hooks.payments.example.com", "frank", "payments", "production", Some(77)),
    cert("payments-staging", "api.payments.staging.example.com", "frank", "payments", "staging", Some(19)),
    Estate {
        policy: "short-lived",
        lifetime_days: 7,
        ..cert("card-vault", "vault.payments.internal.example.com", "bob", "payments", "production", Some(1))
    },
    Estate {
        policy: "short-lived",
        lifetime_days: 7,
        ..cert("tokeniser", "tokens.payments.internal.example.com", "frank", "payments", "production", Some(4))
    },
    cert("fraud-scoring", "fraud.payments.internal.example.com", "frank", "payments", "production", Some(0)),
    Estate {
        targets: &["db-01-files"],
        ..cert("warehouse", "warehouse.data.example.com", "dave", "data", "production", Some(55))
    },
    cert("kafka-broker-1", "kafka-1.data.internal.example.com", "dave", "data", "production", Some(28)),
    cert("kafka-broker-2", "kafka-2.data.internal.example.com", "dave", "data", "production", Some(29)),
    cert("kafka-broker-3", "kafka-3.data.internal.example.com", "dave", "data", "production", Some(-1)),
    cert("airflow", "airflow.data.example.com", "dave", "data", "staging", Some(88)),
    cert("notebooks", "notebooks.data.example.com", "dave", "data", "development", Some(11)),
    cert("dev-portal", "dev.example.com", "erin", "platform", "development", Some(150)),
    cert("ci", "ci.example.com", "erin", "platform", "production", Some(66)),
    cert("artifacts", "artifacts.example.com", "alice", "platform", "production", Some(98)),
    Estate { lifetime_days: 398, ..cert("mail", "mail.example.com", "alice", "platform", "production", Some(301)) },
    cert("staging-www", "www.staging.example.com", "alice", "platform", "staging", Some(45)),
    cert("staging-api", "api.staging.example.com", "alice", "platform", "staging", Some(-12)),
    cert("docs", "docs.example.com", "erin", "platform", "production", Some(120)),
    Estate {
        lifetime_days: 365,
        ..cert("partner-mtls", "partners.payments.example.com", "bob", "payments", "production", Some(180))
    },
    cert("mobile-api", "m.api.example.com", "alice", "platform", "production", Some(27)),
    // Declared, waiting for their first issuance.
    cert("search", "search.example.com", "erin", "platform", "production", None),
    cert("billing-v2", "billing.payments.example.com", "bob", "payments", "staging", None),
    cert("lakehouse", "lakehouse.data.example.com", "dave", "data", "development", None),
];

/// Found on a file share: imported rather than declared, so they arrive with
/// ids derived from their names and no owner yet.
const IMPORTED: &[(&str, i64)] = &[
    ("legacy-intranet.example.com", 16),
    ("printers.office.example.com", -45),
    ("wiki.example.com", 130),
    ("timesheets.example.com", 6),
    ("vpn.example.com", 250),
];

pub async fn seed(channel: Channel) -> anyhow::Result<()> {
    let mut client = InventoryServiceClient::new(channel).max_decoding_message_size(32 << 20);
    wait_until_up(&mut client).await?;
    let existing = client
        .list_certificates(pb::ListCertificatesRequest { page_size: 1, ..Default::default() })
        .await
        .context("cannot list certificates")?;
    if !existing.get_ref().certificates.is_empty() {
        tracing::info!("the inventory already holds certificates; demo data not seeded again");
        return Ok(());
    }
    let ca = CertificateAuthority::new("certctl Demo Issuing CA", KeyType::EcdsaP256)?;
    people(&mut client).await?;
    hosts(&mut client).await?;
    let now = certctl_domain::now();
    for estate in ESTATE {
        declare(&mut client, &ca, estate, now).await.with_context(|| format!("seeding certificates/{}", estate.id))?;
    }
    let items = IMPORTED
        .iter()
        .map(|(name, days_left)| {
            let leaf = ca.issue_leaf(
                name,
                &[(*name).to_owned()],
                KeyType::EcdsaP256,
                now + days_left * DAY - 365 * DAY,
                365 * DAY,
            )?;
            Ok(pb::ImportItem {
                pem_chain: format!("{}{}", leaf.certificate_pem, ca.certificate_pem),
                environment: "production".into(),
                source: format!("/srv/share/tls/{name}.pem"),
                ..Default::default()
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let imported = client.import_certificates(pb::ImportCertificatesRequest { items }).await?.into_inner();
    anyhow::ensure!(imported.failed == 0, "demo import refused items: {:?}", imported.results);
    tracing::info!(certificates = ESTATE.len() + IMPORTED.len(), "demo data seeded");
    Ok(())
}

async fn wait_until_up(client: &mut InventoryServiceClient<Channel>) -> anyhow::Result<()> {
    let mut delay = Duration::from_millis(50);
    for _ in 0..40 {
        let probe = client.list_owners(pb::ListOwnersRequest { page_size: 1, ..Default::default() }).await;
        match probe {
            Ok(_) => return Ok(()),
            Err(status) if status.code() == tonic::Code::Unavailable => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(status) => anyhow::bail!("the inventory refused the demo seed: {}", status.message()),
        }
    }
    anyhow::bail!("the inventory did not come up")
}

async fn people(client: &mut InventoryServiceClient<Channel>) -> anyhow::Result<()> {
    for (id, display, email) in [
        ("platform", "Platform Engineering", "platform@example.com"),
        ("payments", "Payments", "payments-oncall@example.com"),
        ("identity", "Identity & Access", "iam@example.com"),
        ("data", "Data Platform", "data-eng@example.com"),
    ] {
        let team = pb::Team { display_name: display.into(), email: email.into(), ..Default::default() };
        client.create_team(pb::CreateTeamRequest { team: Some(team), team_id: id.into() }).await?;
    }
    for (id, display, team) in [
        ("alice", "Alice Moreau", "platform"),
        ("erin", "Erin Okafor", "platform"),
        ("bob", "Bob Lindqvist", "payments"),
        ("frank", "Frank Nakamura", "payments"),
        ("carol", "Carol Mendes", "identity"),
        ("dave", "Dave Kowalski", "data"),
    ] {
        let owner = pb::Owner {
            display_name: display.into(),
            email: format!("{id}@example.com"),
            team: format!("teams/{team}"),
            ..Default::default()
        };
        client.create_owner(pb::CreateOwnerRequest { owner: Some(owner), owner_id: id.into() }).await?;
    }
    let policies = [
        ("standard", "Standard (renew at 1/3 of lifetime left)", vec![30, 14, 7, 0], 1.0 / 3.0, None),
        ("short-lived", "Short-lived service certificates", vec![3, 1, 0], 0.5, Some(2 * DAY)),
    ];
    for (id, display, thresholds, fraction, lead) in policies {
        let policy = pb::RenewalPolicy {
            display_name: display.into(),
            alert_threshold_days: thresholds,
            renew_before_lifetime_fraction: fraction,
            renew_before: lead.map(|seconds| pbjson_types::Duration { seconds, nanos: 0 }),
            ..Default::default()
        };
        client
            .create_renewal_policy(pb::CreateRenewalPolicyRequest {
                renewal_policy: Some(policy),
                renewal_policy_id: id.into(),
            })
            .await?;
    }
    Ok(())
}

async fn hosts(client: &mut InventoryServiceClient<Channel>) -> anyhow::Result<()> {
    for (id, hostname) in [
        ("web-01", "web-01.prod.example.com"),
        ("web-02", "web-02.prod.example.com"),
        ("lb-01", "lb-01.prod.example.com"),
        ("db-01", "db-01.prod.example.com"),
    ] {
        let agent = pb::Agent { display_name: id.into(), hostname: hostname.into(), ..Default::default() };
        client.create_agent(pb::CreateAgentRequest { agent: Some(agent), agent_id: id.into() }).await?;
    }
    let web = |host: &str, dir: &str| pb::WebServerTargetConfig {
        certificate_path: format!("{dir}/fullchain.pem"),
        key_path: format!("{dir}/privkey.pem"),
        verify_host: host.into(),
        verify_port: 443,
        verify_server_name: String::new(),
        ..Default::default()
    };
    let targets = [
        ("web-01-nginx", "web-01", Config::Nginx(web("web-01.prod.example.com", "/etc/nginx/tls"))),
        ("web-02-apache", "web-02", Config::Apache(web("web-02.prod.example.com", "/etc/apache2/tls"))),
        ("lb-01-haproxy", "lb-01", Config::Haproxy(web("lb-01.prod.example.com", "/etc/haproxy/certs"))),
        (
            "db-01-files",
            "db-01",
            Config::File(pb::FileTargetConfig {
                directory: "/etc/ssl/warehouse".into(),
                mode: "0640".into(),
                owner: "postgres".into(),
                group: "postgres".into(),
                post_deploy_command: "systemctl reload postgresql".into(),
            }),
        ),
    ];
    for (id, agent, config) in targets {
        let target = pb::Target {
            display_name: id.into(),
            agent: format!("agents/{agent}"),
            config: Some(config),
            ..Default::default()
        };
        client.create_target(pb::CreateTargetRequest { target: Some(target), target_id: id.into() }).await?;
    }
    Ok(())
}

async fn declare(
    client: &mut InventoryServiceClient<Channel>,
    ca: &CertificateAuthority,
    estate: &Estate,
    now: i64,
) -> anyhow::Result<()> {
    let mut sans: Vec<String> = vec![estate.common_name.to_owned()];
    sans.extend(estate.extra_sans.iter().map(|s| (*s).to_owned()));
    let public = estate.common_name.ends_with(".example.com") && !estate.common_name.contains(".internal.");
    let certificate = pb::Certificate {
        display_name: estate.common_name.into(),
        common_name: estate.common_name.into(),
        subject_alt_names: sans.clone(),
        owner: format!("owners/{}", estate.owner),
        team: format!("teams/{}", estate.team),
        environment: estate.environment.into(),
        issuer: if public { "issuers/letsencrypt" } else { "issuers/local-ca" }.into(),
        profile: "profiles/tls-server".into(),
        renewal_policy: format!("renewalPolicies/{}", estate.policy),
        targets: estate.targets.iter().map(|t| format!("targets/{t}")).collect(),
        labels: [("tier".to_owned(), if estate.environment == "production" { "1" } else { "3" }.to_owned())].into(),
        ..Default::default()
    };
    client
        .create_certificate(pb::CreateCertificateRequest {
            certificate: Some(certificate),
            certificate_id: estate.id.into(),
            request_id: String::new(),
        })
        .await?;
    let Some(days_left) = estate.days_left else {
        return Ok(());
    };
    let lifetime = estate.lifetime_days * DAY;
    let not_after = now + days_left * DAY + 3_600;
    // Certificates past their first renewal carry the version they replaced.
    let versions =
        if lifetime < 365 * DAY && days_left > 30 { vec![not_after - lifetime, not_after] } else { vec![not_after] };
    for expiry in versions {
        let leaf = ca.issue_leaf(estate.common_name, &sans, KeyType::EcdsaP256, expiry - lifetime, lifetime)?;
        client
            .create_certificate_version(pb::CreateCertificateVersionRequest {
                parent: format!("certificates/{}", estate.id),
                pem_chain: format!("{}{}", leaf.certificate_pem, ca.certificate_pem),
            })
            .await?;
    }
    Ok(())
}
