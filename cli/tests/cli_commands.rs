//! `certctl cert|ca|job ...` against a real `certctl server`, with
//! `openssl` as the independent checker of what they write.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Platform, Storage, openssl};

/// Makes `NAME.key` and `NAME.csr` for `cn` (and its SANs) with openssl.
fn csr(platform: &Platform, name: &str, cn: &str, sans: &[&str]) {
    let san = sans.iter().map(|s| format!("DNS:{s}")).collect::<Vec<_>>().join(",");
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    openssl(
        platform.dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            &format!("subjectAltName={san}"),
        ],
    );
}

/// The value after `label:` in a command's output.
fn field(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim_start_matches(':').trim().to_owned()))
        .unwrap_or_else(|| panic!("no `{label}` in:\n{stdout}"))
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_is_created_issued_verified_and_revoked() {
    let platform = Platform::single(&Storage::from_env().await, &[]).await;
    let dir = platform.dir.path();
    csr(&platform, "shop", "shop.example.test", &["shop.example.test", "www.shop.example.test"]);

    let created = platform
        .cli(&[
            "cert",
            "create",
            "shop",
            "--cn",
            "shop.example.test",
            "--san",
            "shop.example.test",
            "--san",
            "www.shop.example.test",
            "--environment",
            "production",
            "--label",
            "tier=web",
        ])
        .ok();
    assert_eq!(created.stdout.trim(), "created certificates/shop (PENDING)");

    let issued =
        platform.cli(&["cert", "issue", "shop", "--csr", "shop.csr", "--lifetime", "90d", "--out", "shop.pem"]).ok();
    assert!(issued.stdout.starts_with("issued certificates/shop/versions/1\n"), "{issued}");
    let issued_as = field(&issued.stdout, "issued as");
    assert!(issued_as.starts_with("issuers/local/issuedCertificates/"), "{issued}");
    // The serial as OpenSSL prints it: upper case, without the DER sign byte.
    let serial = field(&issued.stdout, "serial number").to_uppercase().trim_start_matches('0').to_owned();
    let x509 = openssl(dir, &["x509", "-in", "shop.pem", "-noout", "-serial", "-ext", "subjectAltName"]);
    assert_eq!(field(&x509, "serial=").trim_start_matches('0'), serial, "{x509}");
    assert!(x509.contains("DNS:www.shop.example.test"), "{x509}");

    let got = platform.cli(&["cert", "get", "certificates/shop"]).ok();
    assert_eq!(field(&got.stdout, "state"), "ACTIVE", "{got}");
    assert_eq!(field(&got.stdout, "current version"), "certificates/shop/versions/1");
    assert_eq!(field(&got.stdout, "labels"), "tier=web");
    assert!(got.stdout.lines().any(|l| l.starts_with("certificates/shop/versions/1") && l.contains(&serial)), "{got}");
    let json = json_lines(&platform.cli(&["cert", "get", "shop", "--output", "json"]).ok().stdout);
    let not_after = json[0]["certificate"]["notAfter"].as_str().unwrap().to_owned();
    let lifetime = time::OffsetDateTime::parse(&not_after, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
        - certctl_domain::now();
    assert!((89 * 86_400..=90 * 86_400).contains(&lifetime), "--lifetime 90d: {not_after}");
    assert!(json[0]["versions"][0]["serialNumber"].as_str().unwrap().ends_with(&serial), "{json:?}");

    // Listing, with filters, as a table and as proto3 JSON.
    let listed = platform.cli(&["cert", "list", "--environment", "production"]).ok();
    let rows: Vec<&str> = listed.stdout.lines().collect();
    assert!(rows[0].starts_with("NAME") && rows[0].contains("NOT AFTER"), "{listed}");
    assert!(rows[1].starts_with("certificates/shop") && rows[1].contains("ACTIVE"), "{listed}");
    assert!(rows[1].contains("issuers/local"), "{listed}");
    let json = json_lines(&platform.cli(&["cert", "list", "--search", "WWW.SHOP", "--output", "json"]).ok().stdout);
    assert_eq!(json.len(), 1);
    assert_eq!(json[0]["state"], "CERTIFICATE_STATE_ACTIVE");
    for (deadline, expected) in [("100d", 1), ("60d", 0), ("2000-01-01T00:00:00Z", 0), ("2999-01-01T00:00:00Z", 1)] {
        let out = platform.cli(&["cert", "list", "--expire-before", deadline, "--output", "json"]).ok();
        assert_eq!(out.stdout.lines().count(), expected, "--expire-before {deadline}: {out}");
    }
    assert_eq!(platform.cli(&["cert", "list", "--state", "pending", "--output", "json"]).ok().stdout, "");

    // The CA file from `ca export` verifies the chain with OpenSSL.
    let cas = platform.cli(&["ca", "list"]).ok();
    for expected in ["issuers/local/authorities/", "root", "intermediate", "/pki/local/", ".crl", "ocsp"] {
        assert!(cas.stdout.contains(expected), "`{expected}` in:\n{cas}");
    }
    let export = platform.cli(&["ca", "export", "local", "--out", "local-ca.pem"]).ok();
    assert!(export.stdout.contains("local-ca.pem"), "{export}");
    let ca_pem = std::fs::read_to_string(platform.path("local-ca.pem")).unwrap();
    assert_eq!(ca_pem.matches("BEGIN CERTIFICATE").count(), 2, "root and intermediate");
    let (subject, issuer) = first_subject_and_issuer(&platform, "local-ca.pem");
    assert_eq!(subject, issuer, "the root (self-signed) comes first");
    let verified = openssl(dir, &["verify", "-CAfile", "local-ca.pem", "shop.pem"]);
    assert_eq!(verified.trim(), "shop.pem: OK");
    let stdout = platform.cli(&["ca", "export", "issuers/local"]).ok().stdout;
    assert_eq!(stdout, ca_pem, "stdout without --out");

    // Revoking the certificate revokes its current version.
    let revoked = platform.cli(&["cert", "revoke", "shop", "--reason", "keyCompromise"]).ok();
    assert!(
        revoked.stdout.starts_with(&format!("revoked {issued_as} (certificates/shop/versions/1) at ")),
        "{revoked}"
    );
    assert!(revoked.stdout.trim_end().ends_with(": keyCompromise"), "{revoked}");
    let got = platform.cli(&["cert", "get", "shop"]).ok();
    assert_eq!(field(&got.stdout, "state"), "REVOKED", "{got}");
    assert!(got.stdout.lines().any(|l| l.starts_with("certificates/shop/versions/1") && l.contains("keyCompromise")));
    let listed = platform.cli(&["cert", "list", "--state", "revoked"]).ok();
    assert!(listed.stdout.contains("certificates/shop"), "{listed}");
}

/// The subject and issuer of the first certificate in a PEM file.
fn first_subject_and_issuer(platform: &Platform, file: &str) -> (String, String) {
    let out = openssl(platform.dir.path(), &["x509", "-in", file, "-noout", "-subject", "-issuer"]);
    let subject = field(&out, "subject=");
    let issuer = field(&out, "issuer=");
    (subject, issuer)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_keyed_certificate_hands_out_its_key_once() {
    let platform = Platform::single(&Storage::Sqlite, &[]).await;
    let dir = platform.dir.path();
    platform.cli(&["cert", "create", "api", "--cn", "api.example.test", "--server-keyed"]).ok();
    let issued = platform.cli(&["cert", "issue", "api", "--out", "api.pem"]).ok();
    assert!(issued.stdout.starts_with("issued certificates/api/versions/1\n"), "{issued}");

    let exported = platform
        .cli(&["cert", "export-key", "certificates/api/versions/1", "--format", "pem", "--out", "api-key.pem"])
        .ok();
    assert!(exported.stdout.contains("the platform no longer holds it"), "{exported}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(platform.path("api-key.pem")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let bundle = std::fs::read_to_string(platform.path("api-key.pem")).unwrap();
    assert!(bundle.starts_with("-----BEGIN PRIVATE KEY-----"), "the key, then the chain");
    assert!(bundle.contains("BEGIN CERTIFICATE"));
    let key_public = openssl(dir, &["pkey", "-in", "api-key.pem", "-pubout"]);
    let certificate_public = openssl(dir, &["x509", "-in", "api.pem", "-noout", "-pubkey"]);
    assert_eq!(key_public, certificate_public, "the exported key is the certificate's");

    // Once only; an existing file is never overwritten, and a failure leaves no file behind.
    let again = platform.cli(&["cert", "export-key", "api", "--format", "pem", "--out", "again.pem"]).failed();
    assert!(again.contains("already exported; it is handed out once"), "{again}");
    assert!(!platform.path("again.pem").exists());
    let exists = platform.cli(&["cert", "export-key", "api", "--format", "pem", "--out", "api-key.pem"]).failed();
    assert!(exists.contains("does not overwrite"), "{exists}");
    assert_eq!(std::fs::read_to_string(platform.path("api-key.pem")).unwrap(), bundle);

    // PKCS#12: a short password is refused before the key is spent.
    platform.cli(&["cert", "issue", "api"]).ok();
    std::fs::write(platform.path("short.txt"), "short\n").unwrap();
    let short = platform
        .cli(&["cert", "export-key", "api", "--format", "pkcs12", "--password-file", "short.txt", "--out", "a.p12"])
        .failed();
    assert!(short.contains("at least 12 characters"), "{short}");
    std::fs::write(platform.path("password.txt"), "correct horse battery\n").unwrap();
    platform
        .cli(&["cert", "export-key", "api", "--format", "pkcs12", "--password-file", "password.txt", "--out", "a.p12"])
        .ok();
    openssl(
        dir,
        &["pkcs12", "-in", "a.p12", "-passin", "file:password.txt", "-nodes", "-nocerts", "-out", "p12-key.pem"],
    );
    let key_public = openssl(dir, &["pkey", "-in", "p12-key.pem", "-pubout"]);
    let v2 = json_lines(&platform.cli(&["cert", "get", "api", "--output", "json"]).ok().stdout);
    assert_eq!(v2[0]["certificate"]["currentVersion"], "certificates/api/versions/2");
    let chain = v2[0]["versions"].as_array().unwrap().iter().find(|v| v["name"] == "certificates/api/versions/2");
    std::fs::write(platform.path("api-v2.pem"), chain.unwrap()["pemChain"].as_str().unwrap()).unwrap();
    assert_eq!(key_public, openssl(dir, &["x509", "-in", "api-v2.pem", "-noout", "-pubkey"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn mistakes_get_a_readable_message_and_a_non_zero_exit() {
    let platform = Platform::single(&Storage::Sqlite, &[]).await;
    let missing = platform.cli(&["cert", "get", "nope"]).failed();
    assert!(missing.contains("cannot get certificates/nope: certificates/nope not found"), "{missing}");
    let missing = platform.cli(&["cert", "issue", "nope"]).failed();
    assert!(missing.contains("not found"), "{missing}");

    let duration = platform.cli(&["cert", "issue", "shop", "--lifetime", "5x"]);
    assert_eq!(duration.code, Some(2), "a usage error: {duration}");
    assert!(duration.stderr.contains("`5x` is not a duration"), "{duration}");
    assert!(duration.stderr.contains("90d, 12h, 5m or 300s"), "{duration}");
    let state = platform.cli(&["cert", "list", "--state", "fine"]).failed();
    assert!(state.contains("pending, active, expiring, expired, revoked"), "{state}");
    let reason = platform.cli(&["cert", "revoke", "shop", "--reason", "because"]).failed();
    assert!(reason.contains("keyCompromise"), "{reason}");

    // The service's field violations reach the user.
    let bad_id = platform.cli(&["cert", "create", "Bad_Id", "--cn", "bad.example.test"]).failed();
    assert!(bad_id.contains("cannot create certificates/Bad_Id:") && bad_id.contains("certificate_id"), "{bad_id}");
    let bad_san = platform.cli(&["cert", "create", "odd", "--cn", "odd.example.test", "--san", "not a name"]).failed();
    assert!(bad_san.contains("subject_alt_names[0]"), "{bad_san}");

    platform.cli(&["cert", "create", "keyless", "--cn", "keyless.example.test"]).ok();
    let no_csr = platform.cli(&["cert", "issue", "keyless"]).failed();
    assert!(no_csr.contains("send a CSR"), "{no_csr}");
    let unissued = platform.cli(&["cert", "revoke", "keyless"]).failed();
    assert!(unissued.contains("certificates/keyless has no version yet"), "{unissued}");
    let pkcs12 = platform.cli(&["cert", "export-key", "keyless", "--format", "pkcs12", "--out", "k.p12"]).failed();
    assert!(pkcs12.contains("--password-file"), "{pkcs12}");
    csr(&platform, "other", "other.example.test", &["other.example.test"]);
    let wrong_names = platform.cli(&["cert", "issue", "keyless", "--csr", "other.csr"]).failed();
    assert!(wrong_names.contains("does not declare"), "{wrong_names}");
    let no_file = platform.cli(&["cert", "issue", "keyless", "--csr", "missing.csr"]).failed();
    assert!(no_file.contains("cannot read missing.csr"), "{no_file}");

    let authority = platform.cli(&["ca", "export", "local", "--authority", "nope"]).failed();
    assert!(authority.contains("has no authority issuers/local/authorities/nope; it has issuers/local/authorities/"));
    let issuer = platform.cli(&["ca", "list", "nope"]).failed();
    assert!(issuer.contains("issuers/nope not found"), "{issuer}");

    let port = support::free_port();
    let unreachable = platform.cli(&["cert", "list", "--server", &format!("http://127.0.0.1:{port}")]).failed();
    assert!(unreachable.contains("cannot reach certctl at"), "{unreachable}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ca_create_generates_a_hierarchy_or_adopts_an_existing_ca() {
    let platform = Platform::single(&Storage::Sqlite, &[]).await;
    let dir = platform.dir.path();
    let generated = platform
        .cli(&[
            "ca",
            "create",
            "team",
            "--display-name",
            "Team CA",
            "--key-algorithm",
            "ecdsa-p384",
            "--root-lifetime",
            "365d",
        ])
        .ok();
    assert!(generated.stdout.starts_with("created issuers/team (issuing authority issuers/team/authorities/"));
    assert!(generated.stdout.contains("root") && generated.stdout.contains("intermediate"), "{generated}");
    let listed = json_lines(&platform.cli(&["ca", "list", "team", "--output", "json"]).ok().stdout);
    assert_eq!(listed.len(), 1);
    let authorities = listed[0]["authorities"].as_array().unwrap();
    assert_eq!(authorities.len(), 2);
    assert!(authorities.iter().all(|a| a["keyAlgorithm"] == "KEY_ALGORITHM_ECDSA_P384"), "{authorities:?}");

    // An enterprise CA made with OpenSSL, adopted as-is.
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "enterprise.key",
            "-out",
            "enterprise.pem",
            "-days",
            "365",
            "-subj",
            "/CN=Enterprise Sub CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let half = platform.cli(&["ca", "create", "enterprise", "--import-chain", "enterprise.pem"]).failed();
    assert!(half.contains("--import-key"), "{half}");
    let imported = platform
        .cli(&["ca", "create", "enterprise", "--import-chain", "enterprise.pem", "--import-key", "enterprise.key"])
        .ok();
    assert!(imported.stdout.contains("imported"), "{imported}");
    platform.cli(&["cert", "create", "web", "--cn", "web.example.test", "--issuer", "enterprise"]).ok();
    csr(&platform, "web", "web.example.test", &["web.example.test"]);
    let issued = platform.cli(&["cert", "issue", "web", "--csr", "web.csr", "--out", "web.pem"]).ok();
    platform.cli(&["ca", "export", "enterprise", "--out", "enterprise-ca.pem"]).ok();
    assert_eq!(openssl(dir, &["verify", "-CAfile", "enterprise-ca.pem", "web.pem"]).trim(), "web.pem: OK");

    // An issued certificate can be revoked by its own name too.
    let issued_as = field(&issued.stdout, "issued as");
    let revoked = platform.cli(&["cert", "revoke", &issued_as, "--reason", "superseded"]).ok();
    assert!(revoked.stdout.contains("(certificates/web/versions/1)"), "{revoked}");
    assert_eq!(field(&platform.cli(&["cert", "get", "web"]).ok().stdout, "state"), "REVOKED");
    let twice = platform.cli(&["cert", "revoke", &issued_as, "--reason", "keyCompromise"]).failed();
    assert!(twice.contains("is already revoked"), "{twice}");
}

/// The scheduler role is another engineer's change in flight; the job tests
/// wait for the gateway to serve it.
async fn wait_for_the_scheduler(platform: &Platform) -> bool {
    for _ in 0..50 {
        let run = platform.cli(&["job", "list", "--limit", "1"]);
        if run.code == Some(0) {
            return true;
        }
        if run.stderr.contains("unimplemented") || run.stderr.contains("Unimplemented") {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn renewals_are_followed_to_the_end_and_failed_jobs_are_retried() {
    let platform = Platform::single(&Storage::from_env().await, &[]).await;
    assert!(wait_for_the_scheduler(&platform).await, "the scheduler answers; logs:\n{}", platform.logs());
    platform.cli(&["cert", "create", "srv", "--cn", "srv.example.test", "--server-keyed"]).ok();
    platform.cli(&["cert", "issue", "srv"]).ok();

    let renewed = platform.cli(&["cert", "renew", "srv", "--wait", "--timeout", "60s"]).ok();
    let lines: Vec<&str> = renewed.stdout.lines().collect();
    assert!(lines[0].starts_with("jobs/") && lines[0].contains(" certificates/srv "), "{renewed}");
    assert!(lines.last().unwrap().contains("-> SUCCEEDED"), "{renewed}");
    assert!(renewed.stdout.contains("certificates/srv/versions/2"), "the result names the version: {renewed}");
    let job = lines[0].split_whitespace().next().unwrap().to_owned();
    assert_eq!(
        field(&platform.cli(&["cert", "get", "srv"]).ok().stdout, "current version"),
        "certificates/srv/versions/2"
    );

    let listed = platform.cli(&["job", "list", "--certificate", "srv"]).ok();
    assert!(listed.stdout.lines().any(|l| l.starts_with(&job) && l.contains("SUCCEEDED")), "{listed}");
    let quiet = platform.cli(&["job", "list", "--certificate", "srv", "--state", "succeeded", "-q"]).ok();
    assert!(quiet.stdout.lines().any(|l| l == job), "{quiet}");
    let events = platform.cli(&["job", "events", &job]).ok();
    assert!(events.stdout.contains("-> RUNNING") && events.stdout.contains("RUNNING -> SUCCEEDED"), "{events}");
    let watched = platform.cli(&["job", "watch", &job]).ok();
    assert!(watched.stdout.contains("SUCCEEDED"), "a finished job is reported at once: {watched}");
    let done = platform.cli(&["job", "cancel", &job]).failed();
    assert!(done.contains(&format!("cannot cancel {job}")), "{done}");

    // A certificate whose key stays with its owner cannot renew without a CSR.
    platform.cli(&["cert", "create", "own", "--cn", "own.example.test"]).ok();
    let stuck = platform.cli(&["cert", "renew", "own", "--wait", "--timeout", "30s"]);
    assert_eq!(stuck.code, Some(1), "{stuck}");
    assert!(stuck.stdout.contains("FAILED: NEEDS_CSR: "), "the failure says why: {stuck}");
    let job = stuck.stdout.lines().next().unwrap().split_whitespace().next().unwrap().to_owned();
    let watch = platform.cli(&["job", "watch", &job]);
    assert_eq!(watch.code, Some(1), "a job that did not succeed: {watch}");
    let retried = platform.cli(&["job", "retry", &job]).ok();
    assert!(retried.stdout.starts_with(&format!("{job} certificates/own ")), "{retried}");
    assert_eq!(platform.cli(&["job", "watch", &job, "--timeout", "30s"]).code, Some(1), "it fails again");
    let events = platform.cli(&["job", "events", &job, "--output", "json"]).ok();
    let changes: Vec<(String, String)> = json_lines(&events.stdout)
        .iter()
        .map(|e| (e["fromState"].as_str().unwrap_or("").to_owned(), e["toState"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert!(changes.contains(&("JOB_STATE_FAILED".to_owned(), "JOB_STATE_PENDING".to_owned())), "{changes:?}");

    // With a CSR, the renewal succeeds. (A fresh certificate: renewing `own`
    // again re-runs its failed job, which does not pick up the new CSR.)
    platform.cli(&["cert", "create", "own2", "--cn", "own2.example.test"]).ok();
    csr(&platform, "own2", "own2.example.test", &["own2.example.test"]);
    let with_csr = platform.cli(&["cert", "renew", "own2", "--csr", "own2.csr", "--wait", "--timeout", "60s"]).ok();
    assert!(with_csr.stdout.contains("SUCCEEDED"), "{with_csr}");
    assert_eq!(
        field(&platform.cli(&["cert", "get", "own2"]).ok().stdout, "current version"),
        "certificates/own2/versions/1"
    );
}

/// One ```sh block of the CLI reference, with the exit status its fence
/// names (```sh exit=1).
struct Example {
    line: usize,
    script: String,
    exit: i32,
}

fn examples(markdown: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```sh") else { continue };
        let mut example = Example { line: number + 1, script: String::new(), exit: 0 };
        for word in info.split_whitespace() {
            let code =
                word.strip_prefix("exit=").unwrap_or_else(|| panic!("line {}: unknown tag `{word}`", number + 1));
            example.exit = code.parse().expect("exit=N");
        }
        for (_, line) in lines.by_ref().take_while(|(_, l)| !l.starts_with("```")) {
            example.script.push_str(line);
            example.script.push('\n');
        }
        out.push(example);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_in_the_cli_reference_runs() {
    let markdown = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reference/cli.md")).unwrap();
    let examples = examples(&markdown);
    assert!(examples.len() >= 20, "the page has its examples: {}", examples.len());
    let platform = Platform::single(&Storage::Sqlite, &[]).await;
    assert!(wait_for_the_scheduler(&platform).await, "the scheduler answers; logs:\n{}", platform.logs());
    let bin_dir = std::path::Path::new(support::BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for example in &examples {
        let output = std::process::Command::new("sh")
            .args(["-ec", &example.script])
            .env("PATH", &path)
            .env("CERTCTL_SERVER", &platform.url)
            .current_dir(platform.dir.path())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(example.exit),
            "docs/reference/cli.md:{}:\n{}--- stdout\n{}--- stderr\n{}",
            example.line,
            example.script,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}
