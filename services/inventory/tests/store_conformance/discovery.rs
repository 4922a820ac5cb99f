//! Discovered certificates: one record per fingerprint across agents and
//! paths, managed ones recorded CLAIMED, states and listings.

use std::sync::Arc;

use certctl_domain::discovery::{DiscoveredCertificate, DiscoveryState, MAX_LOCATIONS_SHOWN, Sighting, discovered_id};
use certctl_domain::inventory::ParsedCertificate;
use certctl_domain::name::version_name;
use certctl_inventory::store::{DiscoveryQuery, DiscoveryTally, Store};

use crate::{DAY, NOW, action, assert_not_found, certificate, event, outbox, outbox_actions, parsed, pem};

const RACERS: usize = 8;

/// A leaf whose fingerprint starts with its serial, so ids differ.
fn leaf(serial: &str) -> ParsedCertificate {
    ParsedCertificate { sha256_fingerprint: fingerprint(serial), ..parsed(serial, NOW - DAY, NOW + 90 * DAY) }
}

fn fingerprint(serial: &str) -> String {
    format!("{:0<64}", serial.to_lowercase())
}

fn sighting(serial: &str, path: &str) -> Sighting {
    Sighting { path: path.into(), pem: pem(serial), parsed: leaf(serial) }
}

/// The id the certificate with `serial` is discovered under.
fn id_of(serial: &str) -> String {
    discovered_id(&fingerprint(serial))
}

fn discovered_event(d: &DiscoveredCertificate) -> certctl_domain::audit::NewAuditEvent {
    event("DiscoverCertificate", &d.name())
}

async fn report<S: Store>(store: &S, agent: &str, sightings: &[Sighting], now: i64) -> DiscoveryTally {
    store.report_discoveries(agent, sightings, now, discovered_event).await.expect("report_discoveries")
}

fn tally(new: i64, known: i64) -> DiscoveryTally {
    DiscoveryTally { new, known }
}

fn places(d: &DiscoveredCertificate) -> Vec<(&str, &str, i64)> {
    d.locations.iter().map(|l| (l.agent.as_str(), l.path.as_str(), l.last_seen_time)).collect()
}

async fn reports_are_deduplicated_across_agents_and_paths<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    let a = [sighting("AA", "/etc/ssl/web.pem"), sighting("BB", "/etc/ssl/api.pem"), sighting("AA", "/srv/web.pem")];
    assert_eq!(report(s, "agents/a", &a, NOW).await, tally(2, 0));
    assert_eq!(report(s, "agents/b", &[sighting("AA", "/opt/tls/web.crt")], NOW + 10).await, tally(0, 1));
    assert_eq!(
        outbox_actions(s).await,
        [
            action("DiscoverCertificate", &format!("discoveredCertificates/{}", id_of("AA"))),
            action("DiscoverCertificate", &format!("discoveredCertificates/{}", id_of("BB"))),
        ],
        "one event per certificate seen the first time"
    );

    let web = s.get_discovered_certificate(&id_of("AA")).await.unwrap();
    assert_eq!(web.fingerprint, fingerprint("AA"));
    assert_eq!((web.state, web.certificate.as_str()), (DiscoveryState::New, ""));
    assert_eq!((web.first_seen_time, web.last_seen_time), (NOW, NOW + 10));
    assert_eq!((web.subject.as_str(), web.serial_number.as_str()), ("CN=serial-AA", "AA"));
    assert_eq!(web.dns_names, ["serial-AA.example.com"]);
    assert_eq!(web.pem, pem("AA"));
    assert_eq!(
        places(&web),
        [
            ("agents/b", "/opt/tls/web.crt", NOW + 10),
            ("agents/a", "/etc/ssl/web.pem", NOW),
            ("agents/a", "/srv/web.pem", NOW),
        ],
        "most recently seen first"
    );

    // Seen again at the same place: the times move, nothing is added.
    assert_eq!(report(s, "agents/a", &[sighting("AA", "/srv/web.pem")], NOW + 20).await, tally(0, 1));
    let web = s.get_discovered_certificate(&id_of("AA")).await.unwrap();
    assert_eq!(web.locations.len(), 3);
    assert_eq!((web.locations[0].path.as_str(), web.locations[0].last_seen_time), ("/srv/web.pem", NOW + 20));
    assert_eq!(web.last_seen_time, NOW + 20);
    assert_eq!(outbox(s).await.len(), 2);
    assert_eq!(report(s, "agents/a", &[], NOW).await, tally(0, 0));
    assert_not_found(s.get_discovered_certificate("0123").await, "discoveredCertificates/0123");
}

async fn add_version<S: Store>(store: &S, serial: &str) {
    let leaf = leaf(serial);
    store
        .add_version("web", &pem(serial), &leaf, NOW, |v| event("CreateCertificateVersion", &version_name("web", v)))
        .await
        .expect("add_version");
}

async fn managed_certificates_are_recorded_claimed<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    s.create_certificate(&certificate("web"), None, event("CreateCertificate", "certificates/web")).await.unwrap();
    add_version(s, "C1").await;

    // Already managed when first seen: CLAIMED, and not counted as new.
    assert_eq!(report(s, "agents/a", &[sighting("C1", "/a")], NOW).await, tally(0, 1));
    let c1 = s.get_discovered_certificate(&id_of("C1")).await.unwrap();
    assert_eq!((c1.state, c1.certificate.as_str()), (DiscoveryState::Claimed, "certificates/web"));

    // NEW, then imported some other way: the next report sees it managed.
    assert_eq!(report(s, "agents/a", &[sighting("C2", "/b"), sighting("C3", "/c")], NOW).await, tally(2, 0));
    s.set_discovery_state(&id_of("C3"), DiscoveryState::Dismissed, "", event("DismissDiscoveredCertificate", "x"))
        .await
        .unwrap();
    add_version(s, "C2").await;
    add_version(s, "C3").await;
    assert_eq!(report(s, "agents/b", &[sighting("C2", "/b"), sighting("C3", "/c")], NOW + 5).await, tally(0, 2));
    let c2 = s.get_discovered_certificate(&id_of("C2")).await.unwrap();
    assert_eq!((c2.state, c2.certificate.as_str()), (DiscoveryState::Claimed, "certificates/web"));
    let c3 = s.get_discovered_certificate(&id_of("C3")).await.unwrap();
    assert_eq!((c3.state, c3.certificate.as_str()), (DiscoveryState::Dismissed, ""), "dismissed stays dismissed");
    assert_eq!(places(&c3), [("agents/b", "/c", NOW + 5), ("agents/a", "/c", NOW)], "its locations still update");

    assert_eq!(s.certificate_with_fingerprint(&c2.fingerprint).await.unwrap().as_deref(), Some("web"));
    assert_eq!(s.certificate_with_fingerprint(&"f".repeat(64)).await.unwrap(), None);

    // Deleting the certificate makes what it claimed unmanaged again.
    s.delete_certificate("web", event("DeleteCertificate", "certificates/web")).await.unwrap();
    let c1 = s.get_discovered_certificate(&id_of("C1")).await.unwrap();
    assert_eq!((c1.state, c1.certificate.as_str()), (DiscoveryState::New, ""));
    let c3 = s.get_discovered_certificate(&id_of("C3")).await.unwrap();
    assert_eq!(c3.state, DiscoveryState::Dismissed);
}

async fn states_listings_and_pages<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    let serials = ["05", "01", "04", "02", "03"];
    let sightings: Vec<Sighting> = serials.iter().map(|n| sighting(n, "/etc/ssl/x.pem")).collect();
    report(s, "agents/a", &sightings, NOW).await;
    let before = outbox(s).await.len();
    let claimed = s
        .set_discovery_state(&id_of("02"), DiscoveryState::Claimed, "certificates/two", event("Claim", "x"))
        .await
        .unwrap();
    assert_eq!((claimed.state, claimed.certificate.as_str()), (DiscoveryState::Claimed, "certificates/two"));
    assert_eq!(places(&claimed), [("agents/a", "/etc/ssl/x.pem", NOW)]);
    s.set_discovery_state(&id_of("04"), DiscoveryState::Dismissed, "", event("Dismiss", "x")).await.unwrap();
    assert_eq!(outbox(s).await.len(), before + 2);
    assert_not_found(
        s.set_discovery_state("ghost", DiscoveryState::Dismissed, "", event("Dismiss", "x")).await,
        "discoveredCertificates/ghost",
    );

    let ids = |found: Vec<DiscoveredCertificate>| found.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let q = |state: Option<DiscoveryState>, after: Option<String>, limit: i64| DiscoveryQuery { state, after, limit };
    let all = ids(s.list_discovered_certificates(&q(None, None, 100)).await.unwrap());
    assert_eq!(all, ["01", "02", "03", "04", "05"].map(id_of));
    let new = ids(s.list_discovered_certificates(&q(Some(DiscoveryState::New), None, 100)).await.unwrap());
    assert_eq!(new, ["01", "03", "05"].map(id_of));
    let page = ids(s.list_discovered_certificates(&q(Some(DiscoveryState::New), Some(id_of("01")), 1)).await.unwrap());
    assert_eq!(page, [id_of("03")]);
    let dismissed = s.list_discovered_certificates(&q(Some(DiscoveryState::Dismissed), None, 100)).await.unwrap();
    assert_eq!(ids(dismissed.clone()), [id_of("04")]);
    assert_eq!(places(&dismissed[0]), [("agents/a", "/etc/ssl/x.pem", NOW)], "listings carry locations too");
}

async fn locations_shown_are_the_most_recent_hundred<S: Store>(store: Arc<S>) {
    let s = store.as_ref();
    let many: Vec<Sighting> = (0..120).map(|i| sighting("AB", &format!("/srv/{i:03}.pem"))).collect();
    assert_eq!(report(s, "agents/a", &many, NOW).await, tally(1, 0));
    report(s, "agents/b", &[sighting("AB", "/zzz.pem")], NOW + 1).await;
    let found = s.get_discovered_certificate(&id_of("AB")).await.unwrap();
    assert_eq!(found.locations.len(), MAX_LOCATIONS_SHOWN);
    assert_eq!(places(&found)[0], ("agents/b", "/zzz.pem", NOW + 1));
    assert_eq!(places(&found)[1], ("agents/a", "/srv/000.pem", NOW));
    let listed = s.list_discovered_certificates(&DiscoveryQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(listed[0].locations, found.locations);
}

async fn concurrent_reports_of_one_certificate_record_it_once<S: Store>(store: Arc<S>) {
    let tasks: Vec<_> = (0..RACERS)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let agent = format!("agents/host-{n}");
                store.report_discoveries(&agent, &[sighting("EE", "/etc/ssl/e.pem")], NOW, discovered_event).await
            })
        })
        .collect();
    let mut total = DiscoveryTally::default();
    for task in tasks {
        let t = task.await.unwrap().expect("every report is recorded");
        total.new += t.new;
        total.known += t.known;
    }
    assert_eq!(total, tally(1, RACERS as i64 - 1), "one of them found it first");
    let found = store.get_discovered_certificate(&id_of("EE")).await.unwrap();
    assert_eq!(found.locations.len(), RACERS);
    assert_eq!(outbox(store.as_ref()).await.len(), 1);
}

conformance!(
    reports_are_deduplicated_across_agents_and_paths,
    managed_certificates_are_recorded_claimed,
    states_listings_and_pages,
    locations_shown_are_the_most_recent_hundred,
    concurrent_reports_of_one_certificate_record_it_once,
);
