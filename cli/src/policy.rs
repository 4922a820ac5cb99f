//! `certctl policy ...`: the inventory's policies and their violations, through the gateway.

use std::collections::BTreeMap;
use std::process::ExitCode;

use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::policy_rule::Kind;
use certctl_proto::inventory::{
    ListPoliciesRequest, ListPolicyViolationsRequest, Policy, PolicySeverity, PolicyViolation,
};
use tonic::transport::Channel as Transport;

use crate::ServerAddress;
use crate::admin::{Output, connect, json_line, qualify, refused, request, table, when};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Lists policies, by name, with their rules.
    List {
        /// Prints only the policies' names, one a line (for `$(...)` in scripts).
        #[arg(long, short, conflicts_with = "output")]
        quiet: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Lists the rules the inventory's certificates break now, and how many per policy.
    Violations {
        /// Only this policy's violations: `policies/ID` (or ID).
        #[arg(long)]
        policy: Option<String>,
        /// Only violations of this severity.
        #[arg(long, value_enum)]
        severity: Option<Severity>,
        /// Only this certificate's violations: `certificates/ID` (or ID).
        #[arg(long)]
        certificate: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Severity {
    Warning,
    Error,
    Critical,
}

impl Severity {
    fn to_pb(self) -> PolicySeverity {
        match self {
            Severity::Warning => PolicySeverity::Warning,
            Severity::Error => PolicySeverity::Error,
            Severity::Critical => PolicySeverity::Critical,
        }
    }
}

pub async fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::List { quiet, output, server } => list(quiet, output, &server).await,
        PolicyCommand::Violations { policy, severity, certificate, output, server } => {
            let query = ListPolicyViolationsRequest {
                page_size: 1000,
                policy: policy.map_or_else(String::new, |p| qualify("policies", &p)),
                severity: severity.map_or(PolicySeverity::Unspecified, Severity::to_pb) as i32,
                certificate: certificate.map_or_else(String::new, |c| qualify("certificates", &c)),
                ..Default::default()
            };
            violations(query, output, &server).await
        }
    }
}

async fn client(server: &ServerAddress) -> anyhow::Result<InventoryServiceClient<Transport>> {
    Ok(InventoryServiceClient::new(connect(server).await?))
}

fn severity_name(value: i32) -> &'static str {
    match PolicySeverity::try_from(value) {
        Ok(PolicySeverity::Warning) => "WARNING",
        Ok(PolicySeverity::Error) => "ERROR",
        Ok(PolicySeverity::Critical) => "CRITICAL",
        _ => "?",
    }
}

/// `lifetime:max-lifetime(ERROR)`: each rule's id, kind and severity.
fn rules(p: &Policy) -> String {
    let kind = |k: &Option<Kind>| match k {
        Some(Kind::AllowedIssuers(_)) => "allowed-issuers",
        Some(Kind::AllowedDomains(_)) => "allowed-domains",
        Some(Kind::RequiredMetadataKeys(_)) => "required-metadata-keys",
        Some(Kind::AllowedEnvironments(_)) => "allowed-environments",
        Some(Kind::MaxLifetime(_)) => "max-lifetime",
        Some(Kind::KeyAlgorithms(_)) => "key-algorithms",
        Some(Kind::MinRenewalLead(_)) => "min-renewal-lead",
        None => "?",
    };
    p.rules
        .iter()
        .map(|r| {
            let k = kind(&r.kind);
            let label = if r.id == k { r.id.clone() } else { format!("{}:{k}", r.id) };
            format!("{label}({})", severity_name(r.severity))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn selects(p: &Policy) -> String {
    let Some(s) = &p.selector else { return "all".to_owned() };
    let mut parts: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !s.environments.is_empty() {
        parts.push(format!("environment in {}", s.environments.join("|")));
    }
    if !s.teams.is_empty() {
        parts.push(format!("team in {}", s.teams.join("|")));
    }
    if parts.is_empty() { "all".to_owned() } else { parts.join(", ") }
}

async fn list(quiet: bool, output: Output, server: &ServerAddress) -> anyhow::Result<ExitCode> {
    let mut client = client(server).await?;
    let mut query = ListPoliciesRequest { page_size: 1000, ..Default::default() };
    let mut policies = Vec::new();
    loop {
        let page = client
            .list_policies(request(query.clone()))
            .await
            .map_err(|s| refused("cannot list policies", &s))?
            .into_inner();
        policies.extend(page.policies);
        if page.next_page_token.is_empty() {
            break;
        }
        query.page_token = page.next_page_token;
    }
    if quiet {
        policies.iter().for_each(|p| println!("{}", p.name));
        return Ok(ExitCode::SUCCESS);
    }
    match output {
        Output::Json => policies.iter().try_for_each(json_line)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = policies
                .iter()
                .map(|p| {
                    vec![p.name.clone(), selects(p), rules(p), when(p.update_time.as_ref()), p.display_name.clone()]
                })
                .collect();
            table(&["NAME", "SELECTS", "RULES", "UPDATED", "DISPLAY NAME"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads every page (each examines a bounded share of the inventory) and
/// sums the per-page counts into the inventory's.
async fn violations(
    mut query: ListPolicyViolationsRequest,
    output: Output,
    server: &ServerAddress,
) -> anyhow::Result<ExitCode> {
    let mut client = client(server).await?;
    let mut found: Vec<PolicyViolation> = Vec::new();
    let mut counts: BTreeMap<String, [i64; 3]> = BTreeMap::new();
    loop {
        let page = client
            .list_policy_violations(request(query.clone()))
            .await
            .map_err(|s| refused("cannot list policy violations", &s))?
            .into_inner();
        for c in &page.counts {
            let sums = counts.entry(c.policy.clone()).or_default();
            sums[0] += i64::from(c.warning_count);
            sums[1] += i64::from(c.error_count);
            sums[2] += i64::from(c.critical_count);
        }
        match output {
            // Streamed: one JSON object a line, as each page arrives.
            Output::Json => page.violations.iter().try_for_each(json_line)?,
            Output::Table => found.extend(page.violations),
        }
        if page.next_page_token.is_empty() {
            break;
        }
        query.page_token = page.next_page_token;
    }
    if output == Output::Table {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|v| {
                vec![
                    v.certificate.clone(),
                    v.policy.clone(),
                    v.rule.clone(),
                    severity_name(v.severity).to_owned(),
                    v.message.clone(),
                ]
            })
            .collect();
        table(&["CERTIFICATE", "POLICY", "RULE", "SEVERITY", "WHY"], &rows);
        println!();
        let rows: Vec<Vec<String>> = counts
            .iter()
            .map(|(policy, [w, e, c])| vec![policy.clone(), c.to_string(), e.to_string(), w.to_string()])
            .collect();
        table(&["POLICY", "CRITICAL", "ERROR", "WARNING"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}
