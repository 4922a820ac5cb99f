//! `certctl ca ...`: issuers and their CA certificates (authorities), through
//! the gateway's issuance service.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;
use certctl_proto::issuance::issuer::Config;
use certctl_proto::issuance::local_ca_config::Source;
use certctl_proto::issuance::{
    Authority, CreateIssuerRequest, GeneratedHierarchy, GetIssuerRequest, ImportedAuthority, Issuer, IssuerType,
    ListAuthoritiesRequest, ListIssuersRequest, LocalCaConfig,
};
use certctl_proto::types::KeyAlgorithm;
use tonic::transport::Channel;

use crate::ServerAddress;
use crate::admin::{Output, connect, json_line, qualify, refused, request, table, when};

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Lists issuers and their CA certificates.
    List {
        /// Only this issuer (`issuers/ID` or ID).
        issuer: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Writes an issuer's CA certificates as PEM, root first (a CA file for `openssl verify -CAfile`).
    Export {
        /// `issuers/ID` (or ID).
        issuer: String,
        /// Only this authority (its id, or `issuers/ID/authorities/ID`).
        #[arg(long)]
        authority: Option<String>,
        /// Writes to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Creates a Local CA issuer: a new root and intermediate, or an imported CA certificate and key.
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The issuer's id: lower-case letters, digits and hyphens.
    id: String,
    #[arg(long, default_value = "")]
    display_name: String,
    /// Subject common name prefix of the generated CAs [default: the display name].
    #[arg(long, default_value = "", conflicts_with = "import_chain")]
    common_name: String,
    /// Subject organisation of the generated CAs [default: certctl].
    #[arg(long, default_value = "", conflicts_with = "import_chain")]
    organization: String,
    /// Key type of the generated CAs: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519
    /// [default: ecdsa-p256].
    #[arg(long, value_parser = crate::cert::parse_key_algorithm, conflicts_with = "import_chain")]
    key_algorithm: Option<KeyAlgorithm>,
    /// Validity of the generated root, such as 3650d; the intermediate gets half [default: 10 years].
    #[arg(long, value_parser = crate::cert::parse_duration, conflicts_with = "import_chain")]
    root_lifetime: Option<Duration>,
    /// Adopts an existing CA: its certificate first, then the chain up to the root (PEM).
    #[arg(long, requires = "import_key")]
    import_chain: Option<PathBuf>,
    /// The imported CA's private key (PKCS#8 PEM).
    #[arg(long, requires = "import_chain")]
    import_key: Option<PathBuf>,
    #[command(flatten)]
    server: ServerAddress,
}

pub async fn run(command: CaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CaCommand::List { issuer, output, server } => {
            list(issuer.map(|i| qualify("issuers", &i)), output, &server).await
        }
        CaCommand::Export { issuer, authority, out, server } => {
            export(&qualify("issuers", &issuer), authority.as_deref(), out, &server).await
        }
        CaCommand::Create(args) => create(args).await,
    }
}

async fn list(issuer: Option<String>, output: Output, server: &ServerAddress) -> anyhow::Result<ExitCode> {
    let mut client = IssuanceServiceClient::new(connect(server).await?);
    let issuers = match issuer {
        Some(name) => vec![
            client
                .get_issuer(request(GetIssuerRequest { name: name.clone() }))
                .await
                .map_err(|s| refused(format!("cannot get {name}"), &s))?
                .into_inner()
                .issuer
                .context("the server answered without the issuer")?,
        ],
        None => all_issuers(&mut client).await?,
    };
    let mut rows = Vec::new();
    for issuer in &issuers {
        let authorities = authorities(&mut client, &issuer.name).await?;
        match output {
            Output::Json => json_line(&serde_json::json!({ "issuer": issuer, "authorities": authorities }))?,
            Output::Table => rows.extend(authorities.iter().map(|a| {
                vec![
                    a.name.clone(),
                    a.role.clone(),
                    a.subject.clone(),
                    when(a.not_after.as_ref()),
                    if a.issuing { "yes" } else { "no" }.to_owned(),
                    a.crl_url.clone(),
                    a.ocsp_url.clone(),
                ]
            })),
        }
    }
    if output == Output::Table {
        table(&["AUTHORITY", "ROLE", "SUBJECT", "NOT AFTER", "ISSUING", "CRL", "OCSP"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

async fn all_issuers(client: &mut IssuanceServiceClient<Channel>) -> anyhow::Result<Vec<Issuer>> {
    let mut query = ListIssuersRequest { page_size: 1000, ..Default::default() };
    let mut out = Vec::new();
    loop {
        let page = client
            .list_issuers(request(query.clone()))
            .await
            .map_err(|s| refused("cannot list issuers", &s))?
            .into_inner();
        out.extend(page.issuers);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        query.page_token = page.next_page_token;
    }
}

/// An issuer's CA certificates, root first.
async fn authorities(client: &mut IssuanceServiceClient<Channel>, issuer: &str) -> anyhow::Result<Vec<Authority>> {
    Ok(client
        .list_authorities(request(ListAuthoritiesRequest { parent: issuer.to_owned() }))
        .await
        .map_err(|s| refused(format!("cannot list the authorities of {issuer}"), &s))?
        .into_inner()
        .authorities)
}

async fn export(
    issuer: &str,
    authority: Option<&str>,
    out: Option<PathBuf>,
    server: &ServerAddress,
) -> anyhow::Result<ExitCode> {
    let mut client = IssuanceServiceClient::new(connect(server).await?);
    let mut chosen = authorities(&mut client, issuer).await?;
    if let Some(wanted) = authority {
        let full = if wanted.contains('/') { wanted.to_owned() } else { format!("{issuer}/authorities/{wanted}") };
        let ids: Vec<String> = chosen.iter().map(|a| a.name.clone()).collect();
        chosen.retain(|a| a.name == full);
        if chosen.is_empty() {
            bail!("{issuer} has no authority {full}; it has {}", ids.join(", "));
        }
    }
    let mut pem = String::new();
    for a in &chosen {
        pem.push_str(&a.certificate_pem);
        if !pem.ends_with('\n') {
            pem.push('\n');
        }
    }
    match out {
        Some(path) => {
            std::fs::write(&path, &pem).with_context(|| format!("cannot write {}", path.display()))?;
            let names: Vec<&str> = chosen.iter().map(|a| a.name.as_str()).collect();
            println!("wrote {} to {}", names.join(", "), path.display());
        }
        None => print!("{pem}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let source = match (&args.import_chain, &args.import_key) {
        (Some(chain), Some(key)) => Source::Import(ImportedAuthority {
            certificate_chain_pem: std::fs::read_to_string(chain)
                .with_context(|| format!("cannot read {}", chain.display()))?,
            private_key_pem: std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?,
        }),
        _ => Source::Generate(GeneratedHierarchy {
            common_name: args.common_name,
            organization: args.organization,
            key_algorithm: args.key_algorithm.map_or(0, |k| k as i32),
            root_lifetime: args.root_lifetime.map(crate::cert::proto_duration),
        }),
    };
    let issuer = Issuer {
        display_name: args.display_name,
        r#type: IssuerType::LocalCa as i32,
        config: Some(Config::LocalCa(LocalCaConfig { source: Some(source) })),
        ..Default::default()
    };
    let mut client = IssuanceServiceClient::new(connect(&args.server).await?);
    let created = client
        .create_issuer(request(CreateIssuerRequest { issuer: Some(issuer), issuer_id: args.id.clone() }))
        .await
        .map_err(|s| refused(format!("cannot create issuers/{}", args.id), &s))?
        .into_inner()
        .issuer
        .context("the server answered without the issuer")?;
    println!("created {} (issuing authority {})", created.name, created.issuing_authority);
    let rows: Vec<Vec<String>> = authorities(&mut client, &created.name)
        .await?
        .iter()
        .map(|a| vec![a.name.clone(), a.role.clone(), a.subject.clone(), when(a.not_after.as_ref())])
        .collect();
    table(&["AUTHORITY", "ROLE", "SUBJECT", "NOT AFTER"], &rows);
    Ok(ExitCode::SUCCESS)
}
