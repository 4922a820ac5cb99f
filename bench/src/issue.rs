//! Issuance load over gRPC: `SignCertificate` (CSR in, signed certificate
//! recorded in the issuance database with its audit event) against a running
//! `certctl server`, through the gateway's public port.
//!
//! CSRs are generated before the clock starts, so the client spends its CPU
//! on gRPC alone (it still shares the machine with the server: the report
//! says how much it used). Two modes:
//! - open loop (`rate`): request `i` is due at `start + i / rate` and its
//!   latency runs from that due time, as in `load.rs`;
//! - closed loop (no rate): `concurrency` callers each send the next request
//!   as soon as the last one is answered, for the maximum throughput.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use certctl_pki::KeyType;
use certctl_proto::issuance::{self as pb, issuance_service_client::IssuanceServiceClient};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::load::percentile;

#[derive(Debug, Clone)]
pub struct Plan {
    /// `issuers/{issuer}`.
    pub issuer: String,
    /// Requests per second; `None` for closed loop.
    pub rate: Option<f64>,
    /// Requests in flight at most (open loop), or callers (closed loop).
    pub concurrency: usize,
    pub duration: Duration,
    pub timeout: Duration,
    /// Give each request a fresh request id (the idempotency lookup per call).
    pub request_ids: bool,
}

#[derive(Debug)]
pub struct Report {
    pub mode: &'static str,
    pub offered_rate: Option<f64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub last_error: Option<String>,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// `count` distinct P-256 CSRs, `bench-{i}.example.com` each.
pub fn csrs(count: usize) -> anyhow::Result<Vec<String>> {
    (0..count)
        .map(|i| {
            let cn = format!("bench-{i}.example.com");
            let key = KeyType::EcdsaP256.generate()?;
            Ok(certctl_pki::build_csr(&key, &cn, std::slice::from_ref(&cn))?)
        })
        .collect()
}

pub async fn connect(url: &str, connections: usize) -> anyhow::Result<Vec<IssuanceServiceClient<Channel>>> {
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        let channel = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        clients.push(IssuanceServiceClient::new(channel));
    }
    Ok(clients)
}

/// Creates Local CA issuer `id` with a generated `key` hierarchy unless it exists.
pub async fn ensure_issuer(
    client: &mut IssuanceServiceClient<Channel>,
    id: &str,
    key: certctl_proto::types::KeyAlgorithm,
) -> anyhow::Result<()> {
    let name = format!("issuers/{id}");
    match client.get_issuer(pb::GetIssuerRequest { name: name.clone() }).await {
        Ok(_) => return Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => {}
        Err(s) => bail!("GetIssuer {name}: {s}"),
    }
    let config = pb::LocalCaConfig {
        source: Some(pb::local_ca_config::Source::Generate(pb::GeneratedHierarchy {
            common_name: format!("bench {id}"),
            key_algorithm: key as i32,
            ..Default::default()
        })),
    };
    let issuer = pb::Issuer {
        display_name: id.to_owned(),
        config: Some(pb::issuer::Config::LocalCa(config)),
        ..Default::default()
    };
    client
        .create_issuer(pb::CreateIssuerRequest { issuer: Some(issuer), issuer_id: id.to_owned() })
        .await
        .with_context(|| format!("CreateIssuer {name}"))?;
    Ok(())
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, u64>,
    last_error: Option<String>,
}

impl Tally {
    fn add(&mut self, outcome: Result<Result<(), tonic::Status>, tokio::time::error::Elapsed>, latency: Duration) {
        match outcome {
            Ok(Ok(())) => self.latencies.push(latency),
            Ok(Err(status)) => {
                *self.errors.entry(format!("{:?}", status.code())).or_default() += 1;
                self.last_error = Some(status.message().chars().take(300).collect());
            }
            Err(_) => *self.errors.entry("ClientTimeout".to_owned()).or_default() += 1,
        }
    }
}

pub async fn run(
    plan: &Plan,
    clients: &[IssuanceServiceClient<Channel>],
    csrs: Arc<Vec<String>>,
) -> anyhow::Result<Report> {
    if plan.concurrency == 0 || csrs.is_empty() {
        bail!("--concurrency and --csrs must be at least 1");
    }
    let scheduled = match plan.rate {
        Some(rate) if rate.is_finite() && rate > 0.0 => Some((rate * plan.duration.as_secs_f64()).round() as u64),
        Some(rate) => bail!("--rate must be positive, got {rate}"),
        None => None,
    };
    let period = plan.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let start = Instant::now() + Duration::from_millis(50);
    let stop = start + plan.duration;
    let next = Arc::new(AtomicU64::new(0));
    let run_id = rand::random::<u32>();
    let mut workers = Vec::new();
    for w in 0..plan.concurrency {
        let mut client = clients[w % clients.len()].clone();
        let (next, csrs, plan) = (next.clone(), csrs.clone(), plan.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut last_done = start;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let due = match (scheduled, period) {
                    (Some(n), _) if i >= n => break,
                    (Some(_), Some(period)) => {
                        let due = start + period.mul_f64(i as f64);
                        tokio::time::sleep_until(due).await;
                        due
                    }
                    _ => {
                        tokio::time::sleep_until(start).await;
                        let now = Instant::now();
                        if now >= stop {
                            break;
                        }
                        now
                    }
                };
                if Instant::now() >= stop + plan.timeout {
                    break;
                }
                let request = pb::SignCertificateRequest {
                    issuer: plan.issuer.clone(),
                    csr_pem: csrs[i as usize % csrs.len()].clone(),
                    request_id: if plan.request_ids { format!("bench-{run_id:08x}-{i}") } else { String::new() },
                    ..Default::default()
                };
                let outcome =
                    tokio::time::timeout(plan.timeout, client.sign_certificate(request)).await.map(|r| r.map(|_| ()));
                let done = Instant::now();
                last_done = last_done.max(done);
                tally.add(outcome, done - due);
            }
            (tally, last_done)
        }));
    }
    let mut all = Tally::default();
    let mut last_done = start;
    for worker in workers {
        let (tally, done) = worker.await.context("a load worker panicked")?;
        last_done = last_done.max(done);
        all.latencies.extend(tally.latencies);
        for (code, n) in tally.errors {
            *all.errors.entry(code).or_default() += n;
        }
        all.last_error = tally.last_error.or(all.last_error);
    }
    all.latencies.sort_unstable();
    let pick = |q: f64| percentile(&all.latencies, q);
    Ok(Report {
        mode: if plan.rate.is_some() { "open" } else { "closed" },
        offered_rate: plan.rate,
        ok: all.latencies.len() as u64,
        elapsed: last_done.saturating_duration_since(start),
        p50: pick(0.50),
        p90: pick(0.90),
        p99: pick(0.99),
        max: all.latencies.last().copied().unwrap_or_default(),
        errors: all.errors,
        last_error: all.last_error,
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Report {
    pub fn attempted(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }

    pub fn achieved_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    pub fn summary(&self, issuer: &str) -> String {
        let offered = self.offered_rate.map_or("closed loop".to_owned(), |r| format!("offered {r:.0}/s"));
        let mut s = format!(
            "SignCertificate {issuer}: {offered}, ok {}, errors {:?}, achieved {:.1}/s\n  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.ok,
            self.errors,
            self.achieved_rate(),
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        );
        if let Some(e) = &self.last_error {
            s.push_str(&format!("\n  last error: {e}"));
        }
        s
    }

    pub fn to_json(&self, label: &str, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "label": label,
            "rpc": "SignCertificate",
            "issuer": issuer,
            "mode": self.mode,
            "offered_rate": self.offered_rate,
            "achieved_rate": (self.achieved_rate() * 10.0).round() / 10.0,
            "ok": self.ok,
            "errors": self.errors.values().sum::<u64>(),
            "error_codes": self.errors,
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
            "last_error": self.last_error,
        })
    }
}
