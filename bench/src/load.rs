//! Open-loop HTTP/1.1 load.
//!
//! Request `i` is due at `start + i / rate`, whatever happened to the ones
//! before it, and its latency runs from that due time to the last byte of the
//! response. A server that stalls therefore pays for every request it made
//! wait, instead of silently slowing the load down (coordinated omission).
//! At most `connections` requests are in flight; a request due while all of
//! them are busy waits, and the wait counts in its latency.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// More requests than this in one run is a typo, not a benchmark.
const MAX_REQUESTS: u64 = 2_000_000;
const FIRST_BODY_CHARS: usize = 600;

#[derive(Debug, Clone)]
pub struct Plan {
    pub url: Uri,
    pub rate: f64,
    pub duration: Duration,
    pub connections: usize,
    pub timeout: Duration,
    pub keep_first_body: bool,
}

/// Joins base URL and path, and refuses anything but plain HTTP to loopback.
pub fn target(base: &str, path: &str) -> anyhow::Result<Uri> {
    if !path.starts_with('/') {
        bail!("--path must start with `/`, got `{path}`");
    }
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let uri: Uri = url.parse().with_context(|| format!("`{url}` is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("`{url}`: only http:// is supported");
    }
    let host = uri.host().context("the URL has no host")?;
    if !is_loopback(host) {
        bail!("`{host}` is not a loopback address: the benchmark only loads 127.0.0.0/8, ::1 or localhost");
    }
    Ok(uri)
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[derive(Debug, Default)]
struct Tally {
    /// Latencies of the 2xx responses.
    latencies: Vec<Duration>,
    bad_status: u64,
    transport: u64,
    timeouts: u64,
    last_error: Option<String>,
    first_body: Option<String>,
}

#[derive(Debug)]
pub struct Report {
    pub offered_rate: f64,
    pub scheduled: u64,
    /// Requests never sent because the run hit its deadline.
    pub unsent: u64,
    pub ok: u64,
    pub bad_status: u64,
    pub transport: u64,
    pub timeouts: u64,
    /// From the first due time to the last response.
    pub elapsed: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub last_error: Option<String>,
    pub first_body: Option<String>,
}

pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let scheduled = (plan.rate * plan.duration.as_secs_f64()).round();
    if !(plan.rate.is_finite() && plan.rate > 0.0) || scheduled < 1.0 || scheduled > MAX_REQUESTS as f64 {
        bail!("rate x duration must give between 1 and {MAX_REQUESTS} requests, got {scheduled}");
    }
    if plan.connections == 0 || plan.connections > 4096 {
        bail!("--connections must be between 1 and 4096");
    }
    let scheduled = scheduled as u64;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(plan.connections)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector);

    let period = Duration::from_secs_f64(1.0 / plan.rate);
    // Leave the workers a moment to start so the first requests are not late.
    let start = Instant::now() + Duration::from_millis(50);
    // Nothing is sent after this: the run stops by itself even when the server hangs.
    let deadline = start + plan.duration + plan.timeout;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let (client, next, plan) = (client.clone(), next.clone(), plan.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut last_done = start;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= scheduled {
                    break;
                }
                let due = start + period.mul_f64(i as f64);
                tokio::time::sleep_until(due).await;
                if Instant::now() >= deadline {
                    break;
                }
                let outcome = tokio::time::timeout(plan.timeout, fetch(&client, &plan.url)).await;
                let done = Instant::now();
                last_done = last_done.max(done);
                match outcome {
                    Ok(Ok((status, body))) if status.is_success() => {
                        tally.latencies.push(done - due);
                        if i == 0 && plan.keep_first_body {
                            tally.first_body =
                                Some(String::from_utf8_lossy(&body).chars().take(FIRST_BODY_CHARS).collect());
                        }
                    }
                    Ok(Ok((status, body))) => {
                        tally.bad_status += 1;
                        let body = String::from_utf8_lossy(&body).chars().take(200).collect::<String>();
                        tally.last_error = Some(format!("HTTP {status}: {body}"));
                    }
                    Ok(Err(e)) => {
                        tally.transport += 1;
                        tally.last_error = Some(format!("{e:#}"));
                    }
                    Err(_) => {
                        tally.timeouts += 1;
                        tally.last_error = Some(format!("no response within {:?}", plan.timeout));
                    }
                }
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
        all.bad_status += tally.bad_status;
        all.transport += tally.transport;
        all.timeouts += tally.timeouts;
        all.last_error = tally.last_error.or(all.last_error);
        all.first_body = tally.first_body.or(all.first_body);
    }
    all.latencies.sort_unstable();
    let attempted = all.latencies.len() as u64 + all.bad_status + all.transport + all.timeouts;
    let pick = |q: f64| percentile(&all.latencies, q);
    Ok(Report {
        offered_rate: plan.rate,
        scheduled,
        unsent: scheduled - attempted,
        ok: all.latencies.len() as u64,
        bad_status: all.bad_status,
        transport: all.transport,
        timeouts: all.timeouts,
        elapsed: last_done.saturating_duration_since(start),
        p50: pick(0.50),
        p90: pick(0.90),
        p99: pick(0.99),
        max: all.latencies.last().copied().unwrap_or_default(),
        last_error: all.last_error,
        first_body: all.first_body,
    })
}

async fn fetch(client: &Client<HttpConnector, Empty<Bytes>>, url: &Uri) -> anyhow::Result<(http::StatusCode, Bytes)> {
    let request = http::Request::get(url.clone()).header(http::header::ACCEPT, "application/json").body(Empty::new())?;
    let response = client.request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Nearest-rank percentile of sorted samples; zero when there are none.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Report {
    /// Requests sent, whatever became of them.
    pub fn attempted(&self) -> u64 {
        self.scheduled - self.unsent
    }

    pub fn errors(&self) -> u64 {
        self.bad_status + self.transport + self.timeouts + self.unsent
    }

    /// Successful responses per second over the run.
    pub fn achieved_rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.ok as f64 / secs } else { 0.0 }
    }

    pub fn summary(&self, path: &str) -> String {
        let mut s = format!(
            "GET {path}\n  offered {:.1}/s, scheduled {}, ok {}, errors {} (status {}, transport {}, timeout {}, unsent {}), achieved {:.1}/s\n  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.offered_rate,
            self.scheduled,
            self.ok,
            self.errors(),
            self.bad_status,
            self.transport,
            self.timeouts,
            self.unsent,
            self.achieved_rate(),
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
        );
        if let Some(e) = &self.last_error {
            s.push_str(&format!("\n  last error: {e}"));
        }
        s
    }

    pub fn to_json(&self, label: &str, path: &str) -> serde_json::Value {
        serde_json::json!({
            "label": label,
            "path": path,
            "offered_rate": self.offered_rate,
            "achieved_rate": (self.achieved_rate() * 10.0).round() / 10.0,
            "scheduled": self.scheduled,
            "ok": self.ok,
            "errors": self.errors(),
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
            "last_error": self.last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        for (base, ok) in [
            ("http://127.0.0.1:8080", true),
            ("http://127.9.9.9:1/", true),
            ("http://localhost:18181", true),
            ("http://[::1]:18181", true),
            ("http://10.0.0.1:8080", false),
            ("http://example.com", false),
            ("http://[::2]:80", false),
            ("https://127.0.0.1:8443", false),
        ] {
            assert_eq!(target(base, "/readyz").is_ok(), ok, "{base}");
        }
        assert!(target("http://127.0.0.1:1", "readyz").is_err());
        assert_eq!(target("http://127.0.0.1:1/", "/a?b=c").unwrap().to_string(), "http://127.0.0.1:1/a?b=c");
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        for (q, expected) in [(0.5, 50), (0.9, 90), (0.99, 99), (1.0, 100), (0.0, 1)] {
            assert_eq!(percentile(&samples, q), Duration::from_millis(expected), "q={q}");
        }
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
        assert_eq!(percentile(&[Duration::from_millis(7)], 0.99), Duration::from_millis(7));
    }

    /// A loopback server that answers after a fixed delay on one connection
    /// at a time: open-loop latencies must include the queueing it causes.
    #[tokio::test]
    async fn latency_counts_from_the_due_time() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(reply).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let plan = Plan {
            url: target(&format!("http://{addr}"), "/x").unwrap(),
            rate: 200.0,
            duration: Duration::from_millis(500),
            connections: 1,
            timeout: Duration::from_secs(5),
            keep_first_body: true,
        };
        let report = run(&plan).await.unwrap();
        assert_eq!(report.scheduled, 100);
        assert_eq!(report.ok, 100, "{:?}", report.last_error);
        assert_eq!(report.first_body.as_deref(), Some("ok"));
        // One connection serves 50/s while 200/s are due: the last request
        // waits for the 99 before it, about 100 x 20 ms - 500 ms = 1.5 s.
        assert!(report.max > Duration::from_millis(1200), "{:?}", report.max);
        assert!(report.p50 > Duration::from_millis(500), "{:?}", report.p50);
        assert!(report.achieved_rate() < 60.0, "{}", report.achieved_rate());
    }
}
