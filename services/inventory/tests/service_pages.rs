//! Listing pages through the gRPC edge: page sizes, page tokens bound to
//! their query, and case-insensitive search across pages.

mod support;

use certctl_proto::inventory as pb;
use support::{DAY, Pki, Served, T0, assert_invalid, expect_invalid};

#[tokio::test]
async fn page_tokens_only_continue_their_own_query() {
    let srv = Served::start().await;
    for owner in ["alice", "bob"] {
        srv.create_owner(owner).await;
        for n in 1..=2 {
            let c = pb::Certificate {
                common_name: format!("{owner}{n}.example.com"),
                owner: format!("owners/{owner}"),
                ..Default::default()
            };
            srv.create(&format!("{owner}-{n}"), c).await;
        }
    }
    let alice = pb::ListCertificatesRequest { owner: "owners/alice".into(), page_size: 1, ..Default::default() };
    let first = srv.list(alice.clone()).await.unwrap();
    assert_eq!(first.certificates.len(), 1);
    let token = first.next_page_token;
    assert!(!token.is_empty());

    let elsewhere = [
        pb::ListCertificatesRequest { owner: "owners/bob".into(), ..alice.clone() },
        pb::ListCertificatesRequest { owner: String::new(), ..alice.clone() },
        pb::ListCertificatesRequest { order_by: "name".into(), ..alice.clone() },
        pb::ListCertificatesRequest { order_by: "not_after desc".into(), ..alice.clone() },
        pb::ListCertificatesRequest { search: "alice".into(), ..alice.clone() },
        pb::ListCertificatesRequest { state: pb::CertificateState::Pending as i32, ..alice.clone() },
        pb::ListCertificatesRequest { environment: "prod".into(), ..alice.clone() },
        pb::ListCertificatesRequest { expire_before: support::ts(T0), ..alice.clone() },
    ];
    for request in elsewhere {
        let status = srv.list(pb::ListCertificatesRequest { page_token: token.clone(), ..request.clone() }).await;
        assert_invalid(&status.expect_err("a foreign token"), "page_token");
    }
    for garbage in ["not-a-token", "eyJxIjoxfQ", "%%%"] {
        let status = srv.list(pb::ListCertificatesRequest { page_token: garbage.into(), ..alice.clone() }).await;
        assert_invalid(&status.expect_err(garbage), "page_token");
    }
    // The page size is not part of the query: the token continues with any.
    let second = srv.list(pb::ListCertificatesRequest { page_token: token, page_size: 5, ..alice }).await.unwrap();
    let ids: Vec<_> = first.certificates.iter().chain(&second.certificates).map(|c| c.name.as_str()).collect();
    assert_eq!(ids, ["certificates/alice-1", "certificates/alice-2"]);
    assert!(second.next_page_token.is_empty());

    // Version tokens belong to one certificate, document tokens to one collection.
    let pki = Pki::new("Test Root");
    for n in 0..2 {
        let leaf = pki.leaf("alice1.example.com", T0 - n * DAY, 90 * DAY);
        srv.add_version("certificates/alice-1", &pki.chain(&leaf)).await.unwrap();
    }
    let mut client = srv.client.clone();
    let versions = pb::ListCertificateVersionsRequest {
        parent: "certificates/alice-1".into(),
        page_size: 1,
        ..Default::default()
    };
    let token = client.list_certificate_versions(versions.clone()).await.unwrap().into_inner().next_page_token;
    assert!(!token.is_empty());
    let foreign = pb::ListCertificateVersionsRequest {
        parent: "certificates/bob-1".into(),
        page_token: token.clone(),
        ..versions
    };
    expect_invalid(client.list_certificate_versions(foreign).await, "page_token");
    let token =
        client.list_owners(pb::ListOwnersRequest { page_size: 1, ..Default::default() }).await.unwrap().into_inner();
    let teams = pb::ListTeamsRequest { page_size: 1, page_token: token.next_page_token };
    expect_invalid(client.list_teams(teams).await, "page_token");
}

#[tokio::test]
async fn page_sizes_default_cap_and_refuse_negatives() {
    let srv = Served::start().await;
    for n in 0..55 {
        srv.create_certificate(&format!("svc-{n:02}"), &format!("svc{n}.example.com")).await;
    }
    let all: Vec<String> = (0..55).map(|n| format!("certificates/svc-{n:02}")).collect();
    let names = |r: &pb::ListCertificatesResponse| r.certificates.iter().map(|c| c.name.clone()).collect::<Vec<_>>();

    // 0 means the default of 50.
    let first = srv.list(pb::ListCertificatesRequest::default()).await.unwrap();
    assert_eq!(names(&first), all[..50]);
    let rest = srv.list(pb::ListCertificatesRequest { page_token: first.next_page_token, ..Default::default() }).await;
    let rest = rest.unwrap();
    assert_eq!(names(&rest), all[50..]);
    assert!(rest.next_page_token.is_empty());

    // Above the maximum is capped, not refused.
    for page_size in [1000, 1001, i32::MAX] {
        let everything = srv.list(pb::ListCertificatesRequest { page_size, ..Default::default() }).await.unwrap();
        assert_eq!(names(&everything), all, "page_size {page_size}");
        assert!(everything.next_page_token.is_empty());
    }

    let mut client = srv.client.clone();
    for page_size in [-1, i32::MIN] {
        assert_invalid(
            &srv.list(pb::ListCertificatesRequest { page_size, ..Default::default() }).await.unwrap_err(),
            "page_size",
        );
        expect_invalid(
            client.list_owners(pb::ListOwnersRequest { page_size, ..Default::default() }).await,
            "page_size",
        );
        let versions = pb::ListCertificateVersionsRequest {
            parent: "certificates/svc-00".into(),
            page_size,
            ..Default::default()
        };
        expect_invalid(client.list_certificate_versions(versions).await, "page_size");
    }
}

#[tokio::test]
async fn search_ignores_case_and_pages_continue() {
    let srv = Served::start().await;
    for (id, cn, san) in [
        ("a", "shop.example.com", "cdn.Example.NET"),
        ("b", "api.example.com", "api.internal"),
        ("c", "blog.example.com", "edge.example.net"),
    ] {
        let c = pb::Certificate {
            common_name: cn.into(),
            subject_alt_names: vec![cn.into(), san.into()],
            ..Default::default()
        };
        srv.create(id, c).await;
    }
    let search = |s: &str, page_token: String| pb::ListCertificatesRequest {
        search: s.into(),
        page_size: 1,
        page_token,
        order_by: "name desc".into(),
        ..Default::default()
    };
    let names = |r: &pb::ListCertificatesResponse| r.certificates.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let first = srv.list(search("EXAMPLE.NET", String::new())).await.unwrap();
    assert_eq!(names(&first), ["certificates/c"]);
    // The token belongs to the search, whatever its case.
    let second = srv.list(search("example.net", first.next_page_token)).await.unwrap();
    assert_eq!(names(&second), ["certificates/a"]);
    assert!(second.next_page_token.is_empty());
    let cn =
        srv.list(pb::ListCertificatesRequest { search: "Api.Example".into(), ..Default::default() }).await.unwrap();
    assert_eq!(names(&cn), ["certificates/b"]);
}
