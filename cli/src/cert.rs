//! `certctl cert ...`: managed certificates, through the gateway's inventory,
//! issuance and scheduler services.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{
    Certificate, CertificateState, CertificateVersion, CreateCertificateRequest, GetCertificateRequest,
    ListCertificateVersionsRequest, ListCertificatesRequest,
};
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use certctl_proto::issuance::{
    ExportPrivateKeyRequest, IssueCertificateRequest, IssuedCertificate, KeyFormat, ListIssuedCertificatesRequest,
    RevocationReason, RevokeCertificateRequest,
};
use certctl_proto::scheduler::RenewCertificatesRequest;
use certctl_proto::scheduler::scheduler_service_client::SchedulerServiceClient;
use certctl_proto::types::KeyAlgorithm;
use tonic::transport::Channel;

use crate::ServerAddress;
use crate::admin::{Output, connect, json_line, qualify, refused, request, table, when};

/// The issuer `IssueCertificate` uses for a certificate that names none.
const DEFAULT_ISSUER: &str = "issuers/local";

#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {
    /// Lists managed certificates, the soonest to expire first.
    List(ListArgs),
    /// Shows one certificate and its versions.
    Get {
        /// `certificates/ID` (or just ID).
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Declares a managed certificate in the inventory (state PENDING until a version is issued).
    Create(CreateArgs),
    /// Issues the certificate's next version now, from a CSR or (server-keyed) with a key the platform generates.
    Issue(IssueArgs),
    /// Asks the scheduler to renew certificates now; --wait follows the jobs to their end.
    Renew(RenewArgs),
    /// Revokes a certificate's current version, or one issued certificate by name.
    Revoke(RevokeArgs),
    /// Writes a server-keyed version's private key to a file (mode 0600). Works once per version.
    ExportKey(ExportKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only certificates of this owner (`owners/ID` or ID).
    #[arg(long, default_value = "")]
    owner: String,
    /// Only certificates of this team (`teams/ID` or ID).
    #[arg(long, default_value = "")]
    team: String,
    /// Only certificates in this state: pending, active, expiring, expired or revoked.
    #[arg(long, value_parser = parse_state)]
    state: Option<CertificateState>,
    /// Only certificates of this issuer (`issuers/ID` or ID).
    #[arg(long, default_value = "")]
    issuer: String,
    /// Only certificates with this environment label.
    #[arg(long, default_value = "")]
    environment: String,
    /// Only certificates whose common name or a SAN contains this text (case-insensitive).
    #[arg(long, default_value = "")]
    search: String,
    /// Only certificates expiring before this time: RFC 3339 (2026-01-31T00:00:00Z) or a duration from now (30d).
    #[arg(long, value_parser = parse_deadline)]
    expire_before: Option<pbjson_types::Timestamp>,
    /// At most this many certificates.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    limit: u32,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    server: ServerAddress,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The certificate's id: lower-case letters, digits, `-` and `.`.
    id: String,
    /// The subject common name.
    #[arg(long = "cn")]
    common_name: String,
    /// A subject alternative name (DNS name or IP address); repeat for more.
    #[arg(long = "san")]
    subject_alt_names: Vec<String>,
    #[arg(long, default_value = "")]
    display_name: String,
    /// The issuer that signs its versions.
    #[arg(long, default_value = DEFAULT_ISSUER)]
    issuer: String,
    /// The profile that bounds what is signed.
    #[arg(long, default_value = "profiles/tls-server")]
    profile: String,
    /// The platform generates and keeps the private key (until it is exported once) instead of taking CSRs.
    #[arg(long)]
    server_keyed: bool,
    /// Key type for generated keys: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519
    /// [default: the profile's].
    #[arg(long, value_parser = parse_key_algorithm)]
    key_algorithm: Option<KeyAlgorithm>,
    /// `owners/ID` (or ID).
    #[arg(long, default_value = "")]
    owner: String,
    /// `teams/ID` (or ID).
    #[arg(long, default_value = "")]
    team: String,
    /// An environment label such as production.
    #[arg(long, default_value = "")]
    environment: String,
    /// `renewalPolicies/ID` (or ID) [default: the built-in policy].
    #[arg(long, default_value = "")]
    renewal_policy: String,
    /// A label KEY=VALUE; repeat for more.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Makes a retried create idempotent.
    #[arg(long, default_value = "")]
    request_id: String,
    #[command(flatten)]
    server: ServerAddress,
}

#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// `certificates/ID` (or ID).
    name: String,
    /// A PEM PKCS#10 request; required unless the certificate is server-keyed.
    #[arg(long)]
    csr: Option<PathBuf>,
    /// Validity, such as 90d, 12h, 5m or 3600s [default: the profile's maximum].
    #[arg(long, value_parser = parse_duration)]
    lifetime: Option<Duration>,
    /// Makes a retried issue idempotent: the same id returns the first certificate.
    #[arg(long, default_value = "")]
    request_id: String,
    /// Writes the PEM chain (leaf first) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    server: ServerAddress,
}

#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    /// `certificates/ID` (or ID); one or more.
    #[arg(required = true)]
    names: Vec<String>,
    /// A PEM PKCS#10 request for the new version (one certificate only).
    #[arg(long)]
    csr: Option<PathBuf>,
    /// Follows the jobs until they finish; exits 1 unless all succeed.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits at most.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    server: ServerAddress,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// `certificates/ID` (its current version) or `issuers/ISSUER/issuedCertificates/SERIAL`.
    name: String,
    /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
    /// cessationOfOperation or privilegeWithdrawn.
    #[arg(long, default_value = "unspecified", value_parser = parse_reason)]
    reason: RevocationReason,
    #[command(flatten)]
    server: ServerAddress,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    /// PKCS#8 PEM key followed by the certificate chain.
    Pem,
    /// A PKCS#12 bundle protected by --password-file.
    Pkcs12,
}

#[derive(Debug, clap::Args)]
pub struct ExportKeyArgs {
    /// `certificates/ID/versions/N`, or `certificates/ID` for its current version.
    version: String,
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// File holding the PKCS#12 password (at least 12 characters; a trailing newline is ignored).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Where to write the key; must not exist yet.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    server: ServerAddress,
}

pub async fn run(command: CertCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertCommand::List(args) => list(args).await,
        CertCommand::Get { name, output, server } => get(&qualify("certificates", &name), output, &server).await,
        CertCommand::Create(args) => create(args).await,
        CertCommand::Issue(args) => issue(args).await,
        CertCommand::Renew(args) => renew(args).await,
        CertCommand::Revoke(args) => revoke(args).await,
        CertCommand::ExportKey(args) => export_key(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut client = InventoryServiceClient::new(connect(&args.server).await?);
    let limit = args.limit as usize;
    let mut query = ListCertificatesRequest {
        owner: qualify("owners", &args.owner),
        team: qualify("teams", &args.team),
        state: args.state.map_or(0, |s| s as i32),
        issuer: qualify("issuers", &args.issuer),
        environment: args.environment,
        expire_before: args.expire_before,
        search: args.search,
        ..Default::default()
    };
    let mut certificates = Vec::new();
    let more = loop {
        query.page_size = (limit - certificates.len()).min(1000) as i32;
        let page = client
            .list_certificates(request(query.clone()))
            .await
            .map_err(|s| refused("cannot list certificates", &s))?
            .into_inner();
        certificates.extend(page.certificates);
        if page.next_page_token.is_empty() {
            break false;
        }
        if certificates.len() >= limit {
            break true;
        }
        query.page_token = page.next_page_token;
    };
    match args.output {
        Output::Json => certificates.iter().try_for_each(json_line)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = certificates
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.common_name.clone(),
                        state_name(c.state).to_owned(),
                        when(c.not_after.as_ref()),
                        c.issuer.clone(),
                    ]
                })
                .collect();
            table(&["NAME", "COMMON NAME", "STATE", "NOT AFTER", "ISSUER"], &rows);
            if more {
                eprintln!("(more certificates match: raise --limit to see them)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn get(name: &str, output: Output, server: &ServerAddress) -> anyhow::Result<ExitCode> {
    let mut client = InventoryServiceClient::new(connect(server).await?);
    let certificate = fetch(&mut client, name).await?;
    let versions = versions(&mut client, name).await?;
    match output {
        Output::Json => json_line(&serde_json::json!({ "certificate": certificate, "versions": versions }))?,
        Output::Table => {
            let c = &certificate;
            let mut fields = vec![
                ("name", c.name.clone()),
                ("display name", c.display_name.clone()),
                ("common name", c.common_name.clone()),
                ("SANs", c.subject_alt_names.join(", ")),
                ("state", state_name(c.state).to_owned()),
                ("current version", c.current_version.clone()),
                ("not before", when(c.not_before.as_ref())),
                ("not after", when(c.not_after.as_ref())),
                ("serial number", c.serial_number.clone()),
                ("issuer", c.issuer.clone()),
                ("profile", c.profile.clone()),
                ("server-keyed", c.server_keyed.to_string()),
                ("owner", c.owner.clone()),
                ("team", c.team.clone()),
                ("environment", c.environment.clone()),
                ("renewal policy", c.renewal_policy.clone()),
                ("targets", c.targets.join(", ")),
            ];
            let mut labels: Vec<_> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            fields.push(("labels", labels.join(", ")));
            for (key, value) in fields.into_iter().filter(|(_, v)| !v.is_empty()) {
                println!("{:<16} {value}", format!("{key}:"));
            }
            println!();
            let rows: Vec<Vec<String>> = versions
                .iter()
                .map(|v| {
                    let revoked = match &v.revoke_time {
                        Some(t) => format!("{} ({})", when(Some(t)), v.revocation_reason),
                        None => "-".to_owned(),
                    };
                    vec![v.name.clone(), v.serial_number.clone(), when(v.not_after.as_ref()), revoked]
                })
                .collect();
            table(&["VERSION", "SERIAL", "NOT AFTER", "REVOKED"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn fetch(client: &mut InventoryServiceClient<Channel>, name: &str) -> anyhow::Result<Certificate> {
    client
        .get_certificate(request(GetCertificateRequest { name: name.to_owned() }))
        .await
        .map_err(|s| refused(format!("cannot get {name}"), &s))?
        .into_inner()
        .certificate
        .with_context(|| format!("the server answered without {name}"))
}

async fn versions(client: &mut InventoryServiceClient<Channel>, name: &str) -> anyhow::Result<Vec<CertificateVersion>> {
    let mut query = ListCertificateVersionsRequest { parent: name.to_owned(), page_size: 1000, ..Default::default() };
    let mut out = Vec::new();
    loop {
        let page = client
            .list_certificate_versions(request(query.clone()))
            .await
            .map_err(|s| refused(format!("cannot list the versions of {name}"), &s))?
            .into_inner();
        out.extend(page.certificate_versions);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        query.page_token = page.next_page_token;
    }
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let certificate = Certificate {
        display_name: args.display_name,
        common_name: args.common_name,
        subject_alt_names: args.subject_alt_names,
        owner: qualify("owners", &args.owner),
        team: qualify("teams", &args.team),
        environment: args.environment,
        issuer: qualify("issuers", &args.issuer),
        profile: qualify("profiles", &args.profile),
        renewal_policy: qualify("renewalPolicies", &args.renewal_policy),
        labels: args.labels.into_iter().collect(),
        server_keyed: args.server_keyed,
        key_algorithm: args.key_algorithm.map_or(0, |k| k as i32),
        ..Default::default()
    };
    let mut client = InventoryServiceClient::new(connect(&args.server).await?);
    let created = client
        .create_certificate(request(CreateCertificateRequest {
            certificate: Some(certificate),
            certificate_id: args.id.clone(),
            request_id: args.request_id,
        }))
        .await
        .map_err(|s| refused(format!("cannot create certificates/{}", args.id), &s))?
        .into_inner()
        .certificate
        .context("the server answered without the certificate")?;
    println!("created {} ({})", created.name, state_name(created.state));
    Ok(ExitCode::SUCCESS)
}

async fn issue(args: IssueArgs) -> anyhow::Result<ExitCode> {
    let name = qualify("certificates", &args.name);
    let csr_pem = match &args.csr {
        Some(path) => read_text(path)?,
        None => String::new(),
    };
    let mut client = IssuanceServiceClient::new(connect(&args.server).await?);
    let issued = client
        .issue_certificate(request(IssueCertificateRequest {
            certificate: name.clone(),
            csr_pem,
            lifetime: args.lifetime.map(proto_duration),
            request_id: args.request_id,
        }))
        .await
        .map_err(|s| refused(format!("cannot issue {name}"), &s))?
        .into_inner()
        .issued_certificate
        .context("the server answered without the issued certificate")?;
    println!("issued {}", issued.certificate_version);
    println!("  serial number:  {}", issued.serial_number);
    println!("  not after:      {}", when(issued.not_after.as_ref()));
    println!("  issued as:      {}", issued.name);
    if let Some(out) = &args.out {
        std::fs::write(out, &issued.pem_chain).with_context(|| format!("cannot write {}", out.display()))?;
        println!("wrote the chain (leaf first) to {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn renew(args: RenewArgs) -> anyhow::Result<ExitCode> {
    let certificates: Vec<String> = args.names.iter().map(|n| qualify("certificates", n)).collect();
    let csr_pem = match &args.csr {
        Some(path) => read_text(path)?,
        None => String::new(),
    };
    let channel = connect(&args.server).await?;
    let jobs = SchedulerServiceClient::new(channel.clone())
        .renew_certificates(request(RenewCertificatesRequest { certificates, csr_pem }))
        .await
        .map_err(|s| refused("cannot renew", &s))?
        .into_inner()
        .jobs;
    if !args.wait {
        for job in &jobs {
            println!("{}", crate::job::progress(job, None));
        }
        return Ok(ExitCode::SUCCESS);
    }
    crate::job::follow(channel, jobs.into_iter().map(|j| j.name).collect(), args.timeout).await
}

async fn revoke(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.server).await?;
    let mut issuance = IssuanceServiceClient::new(channel.clone());
    let issued_name = if args.name.starts_with("issuers/") {
        args.name.clone()
    } else {
        let name = qualify("certificates", &args.name);
        let certificate = fetch(&mut InventoryServiceClient::new(channel), &name).await?;
        current_issued(&mut issuance, &certificate).await?.name
    };
    let revoked = issuance
        .revoke_certificate(request(RevokeCertificateRequest { name: issued_name.clone(), reason: args.reason as i32 }))
        .await
        .map_err(|s| refused(format!("cannot revoke {issued_name}"), &s))?
        .into_inner()
        .issued_certificate
        .context("the server answered without the revoked certificate")?;
    let version = match revoked.certificate_version.as_str() {
        "" => String::new(),
        v => format!(" ({v})"),
    };
    let reason = certctl_domain::issuance::RevocationReason::from_code(i64::from(revoked.revocation_reason))
        .map_or("?", |r| r.as_str());
    println!("revoked {}{version} at {}: {reason}", revoked.name, when(revoked.revoke_time.as_ref()));
    Ok(ExitCode::SUCCESS)
}

/// The issued certificate behind a managed certificate's current version.
async fn current_issued(
    issuance: &mut IssuanceServiceClient<Channel>,
    certificate: &Certificate,
) -> anyhow::Result<IssuedCertificate> {
    let name = &certificate.name;
    if certificate.current_version.is_empty() {
        bail!("{name} has no version yet, so there is nothing to revoke");
    }
    let issuer = match certificate.issuer.as_str() {
        "" => DEFAULT_ISSUER,
        issuer => issuer,
    };
    let mut query = ListIssuedCertificatesRequest { parent: issuer.to_owned(), page_size: 1000, ..Default::default() };
    loop {
        let page = issuance
            .list_issued_certificates(request(query.clone()))
            .await
            .map_err(|s| refused(format!("cannot list what {issuer} issued"), &s))?
            .into_inner();
        if let Some(found) =
            page.issued_certificates.into_iter().find(|i| i.certificate_version == certificate.current_version)
        {
            return Ok(found);
        }
        if page.next_page_token.is_empty() {
            bail!(
                "{} was not issued by {issuer} (imported, or issued elsewhere), so certctl cannot revoke it",
                certificate.current_version
            );
        }
        query.page_token = page.next_page_token;
    }
}

async fn export_key(args: ExportKeyArgs) -> anyhow::Result<ExitCode> {
    let (format, password) = match (args.format, &args.password_file) {
        (ExportFormat::Pem, None) => (KeyFormat::Pem, String::new()),
        (ExportFormat::Pem, Some(_)) => bail!("--password-file is for --format pkcs12; a PEM key is not encrypted"),
        (ExportFormat::Pkcs12, Some(path)) => {
            (KeyFormat::Pkcs12, read_text(path)?.trim_end_matches(['\r', '\n']).to_owned())
        }
        (ExportFormat::Pkcs12, None) => bail!("--format pkcs12 needs --password-file"),
    };
    let channel = connect(&args.server).await?;
    let version = if args.version.contains("/versions/") {
        args.version.clone()
    } else {
        let name = qualify("certificates", &args.version);
        let certificate = fetch(&mut InventoryServiceClient::new(channel.clone()), &name).await?;
        if certificate.current_version.is_empty() {
            bail!("{name} has no version yet");
        }
        certificate.current_version
    };
    // The key can be exported once: make sure it has somewhere to go first.
    let mut file = create_private(&args.out)?;
    let answer = IssuanceServiceClient::new(channel)
        .export_private_key(request(ExportPrivateKeyRequest {
            version: version.clone(),
            format: format as i32,
            password,
        }))
        .await;
    let content = match answer {
        Ok(answer) => answer.into_inner().content,
        Err(status) => {
            drop(file);
            let _ = std::fs::remove_file(&args.out);
            return Err(refused(format!("cannot export the private key of {version}"), &status));
        }
    };
    file.write_all(&content)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("the key was exported but could not be written to {}", args.out.display()))?;
    println!(
        "wrote the private key of {version} to {} (mode 0600); the platform no longer holds it",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A new file only its owner can read; an existing file is never overwritten.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .with_context(|| format!("cannot create {} (certctl does not overwrite key files)", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn state_name(state: i32) -> &'static str {
    CertificateState::try_from(state).map_or("?", |s| s.as_str_name().trim_start_matches("CERTIFICATE_STATE_"))
}

pub(crate) fn proto_duration(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration { seconds: d.as_secs() as i64, nanos: 0 }
}

/// `90d`, `12h`, `5m`, `300s` or plain seconds (`300`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration: use a whole number with d, h, m or s, like 90d, 12h, 5m or 300s");
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let count: u64 = digits.parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(format!("`{text}` is not a duration: it must be longer than zero"));
    }
    let seconds = count.checked_mul(factor).filter(|s| *s <= i64::MAX as u64).ok_or_else(bad)?;
    Ok(Duration::from_secs(seconds))
}

/// An RFC 3339 time, or a duration from now.
fn parse_deadline(text: &str) -> Result<pbjson_types::Timestamp, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(at) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(pbjson_types::Timestamp { seconds: at.unix_timestamp(), nanos: at.nanosecond() as i32 });
    }
    let ahead = parse_duration(text)
        .map_err(|_| format!("`{text}` is neither an RFC 3339 time (2026-01-31T00:00:00Z) nor a duration (30d)"))?;
    Ok(pbjson_types::Timestamp { seconds: certctl_domain::now() + ahead.as_secs() as i64, nanos: 0 })
}

fn parse_state(text: &str) -> Result<CertificateState, String> {
    CertificateState::from_str_name(&format!("CERTIFICATE_STATE_{}", text.to_ascii_uppercase()))
        .filter(|s| *s != CertificateState::Unspecified)
        .ok_or_else(|| format!("`{text}` is not one of pending, active, expiring, expired, revoked"))
}

pub(crate) fn parse_key_algorithm(text: &str) -> Result<KeyAlgorithm, String> {
    let key_type: certctl_pki::KeyType = text.parse().map_err(|e: certctl_pki::KeyError| e.to_string())?;
    let name = format!("KEY_ALGORITHM_{}", key_type.algorithm().as_str());
    KeyAlgorithm::from_str_name(&name).ok_or_else(|| format!("`{text}` has no protobuf name ({name})"))
}

/// An RFC 5280 reason name, as `certctl_domain` spells them (case-insensitive).
fn parse_reason(text: &str) -> Result<RevocationReason, String> {
    use certctl_domain::issuance::RevocationReason as Reason;
    let known: Vec<Reason> = (0..=10).filter_map(Reason::from_code).filter(|r| r.usable_for_revocation()).collect();
    known
        .iter()
        .find(|r| r.as_str().eq_ignore_ascii_case(text))
        .and_then(|r| RevocationReason::try_from(i32::from(r.code())).ok())
        .ok_or_else(|| {
            let names: Vec<&str> = known.iter().map(|r| r.as_str()).collect();
            format!("`{text}` is not one of {}", names.join(", "))
        })
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        let check = |text: &str, expected: Option<u64>| {
            assert_eq!(parse_duration(text).ok().map(|d| d.as_secs()), expected, "{text}");
        };
        check("90d", Some(90 * 86_400));
        check("12h", Some(12 * 3600));
        check("5m", Some(300));
        check("3600s", Some(3600));
        check("300", Some(300));
        check(" 7d ", Some(7 * 86_400));
        check("0", None);
        check("0d", None);
        check("", None);
        check("d", None);
        check("5x", None);
        check("1.5h", None);
        check("-5m", None);
        check("5 m", None);
        check("99999999999999999999d", None);
        check("999999999999999999d", None);
    }

    #[test]
    fn deadlines_are_times_or_durations_from_now() {
        assert_eq!(parse_deadline("2026-01-31T00:00:00Z").unwrap().seconds, 1_769_817_600);
        let ahead = parse_deadline("30d").unwrap().seconds - certctl_domain::now();
        assert!((30 * 86_400 - 5..=30 * 86_400).contains(&ahead), "{ahead}");
        assert!(parse_deadline("tomorrow").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn reasons_and_states_parse_as_documented() {
        assert_eq!(parse_reason("keyCompromise"), Ok(RevocationReason::KeyCompromise));
        assert_eq!(parse_reason("SUPERSEDED"), Ok(RevocationReason::Superseded));
        assert_eq!(parse_reason("cACompromise"), Ok(RevocationReason::CaCompromise));
        let e = parse_reason("removeFromCRL").unwrap_err();
        assert!(e.contains("privilegeWithdrawn"), "unusable reasons are refused and the usable ones named: {e}");
        assert_eq!(parse_state("expiring"), Ok(CertificateState::Expiring));
        assert!(parse_state("unspecified").is_err());
        assert_eq!(parse_key_algorithm("rsa-2048"), Ok(KeyAlgorithm::Rsa2048));
        assert!(parse_key_algorithm("dsa").unwrap_err().contains("ecdsa-p256"));
    }
}
