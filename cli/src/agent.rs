//! `certctl agent ...`: agents and the join tokens that enrol them.

use std::process::ExitCode;

use anyhow::Context as _;
use certctl_proto::inventory::inventory_service_client::InventoryServiceClient;
use certctl_proto::inventory::{
    AgentStatus, CreateJoinTokenRequest, JoinToken, ListAgentsRequest, ListJoinTokensRequest, RetireAgentRequest,
};
use certctl_proto::issuance::ListAuthoritiesRequest;
use certctl_proto::issuance::issuance_service_client::IssuanceServiceClient;

use crate::ServerAddress;
use crate::admin::{Output, connect, json_line, qualify, refused, request, table, when};

#[derive(Debug, clap::Subcommand)]
pub enum AgentCommand {
    /// Lists agents with their live status (Online, Stale, Offline, Retired).
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Retires an agent: its identity is refused from now on.
    Retire {
        /// `agents/ID` (or ID).
        name: String,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Join tokens: one-time credentials that enrol an agent.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Creates a join token and prints the command that enrols an agent with it.
    Create {
        /// How long the token stays valid, in hours (at most 720).
        #[arg(long, default_value_t = 24)]
        ttl_hours: u32,
        /// The id the agent gets; default: derived from its host name.
        #[arg(long)]
        agent_id: Option<String>,
        /// A label copied onto the agent, `key=value`; repeatable.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// The hub's agent port as agents reach it.
        #[arg(long, default_value = "https://127.0.0.1:8444")]
        agent_server: String,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Lists join tokens and whether they were used.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("`{text}` is not key=value"))
}

pub async fn run(command: AgentCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::List { output, server } => list(output, &server).await,
        AgentCommand::Retire { name, server } => {
            let name = qualify("agents", &name);
            let agent = InventoryServiceClient::new(connect(&server).await?)
                .retire_agent(request(RetireAgentRequest { name: name.clone() }))
                .await
                .map_err(|s| refused(format!("cannot retire {name}"), &s))?
                .into_inner()
                .agent
                .context("the server answered without the agent")?;
            println!("retired {} at {}", agent.name, when(agent.retire_time.as_ref()));
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Token { command: TokenCommand::Create { ttl_hours, agent_id, labels, agent_server, server } } => {
            let channel = connect(&server).await?;
            let token = JoinToken {
                agent_id: agent_id.unwrap_or_default(),
                labels: labels.into_iter().collect(),
                ttl: Some(pbjson_types::Duration { seconds: i64::from(ttl_hours) * 3600, nanos: 0 }),
                ..Default::default()
            };
            let created = InventoryServiceClient::new(channel.clone())
                .create_join_token(request(CreateJoinTokenRequest { join_token: Some(token), ..Default::default() }))
                .await
                .map_err(|s| refused("cannot create a join token", &s))?
                .into_inner();
            let fingerprint = platform_fingerprint(channel).await?;
            let token = created.join_token.context("the server answered without the token")?;
            println!("{} (valid until {}, one use)", token.name, when(token.expire_time.as_ref()));
            println!("Enrol an agent with it (the token is not shown again):");
            println!();
            println!(
                "  certctl-agent enroll --server {agent_server} --ca-fingerprint {fingerprint} --token {}",
                created.secret
            );
            Ok(ExitCode::SUCCESS)
        }
        AgentCommand::Token { command: TokenCommand::List { output, server } } => {
            let mut client = InventoryServiceClient::new(connect(&server).await?);
            let mut query = ListJoinTokensRequest { page_size: 1000, ..Default::default() };
            let mut tokens = Vec::new();
            loop {
                let page = client
                    .list_join_tokens(request(query.clone()))
                    .await
                    .map_err(|s| refused("cannot list join tokens", &s))?
                    .into_inner();
                tokens.extend(page.join_tokens);
                if page.next_page_token.is_empty() {
                    break;
                }
                query.page_token = page.next_page_token;
            }
            match output {
                Output::Json => tokens.iter().try_for_each(json_line)?,
                Output::Table => {
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.name.clone(),
                                when(t.expire_time.as_ref()),
                                if t.agent.is_empty() { "-".to_owned() } else { t.agent.clone() },
                                when(t.redeem_time.as_ref()),
                            ]
                        })
                        .collect();
                    table(&["NAME", "EXPIRES", "AGENT", "USED"], &rows);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The SHA-256 of the platform CA's root, which agents pin when enrolling.
async fn platform_fingerprint(channel: tonic::transport::Channel) -> anyhow::Result<String> {
    let authorities = IssuanceServiceClient::new(channel)
        .list_authorities(request(ListAuthoritiesRequest { parent: "issuers/platform".to_owned() }))
        .await
        .map_err(|s| refused("cannot read the platform CA", &s))?
        .into_inner()
        .authorities;
    authorities
        .into_iter()
        .find(|a| a.role == "root")
        .map(|a| a.sha256_fingerprint.to_lowercase())
        .context("issuers/platform has no root authority")
}

async fn list(output: Output, server: &ServerAddress) -> anyhow::Result<ExitCode> {
    let mut client = InventoryServiceClient::new(connect(server).await?);
    let mut query = ListAgentsRequest { page_size: 1000, ..Default::default() };
    let mut agents = Vec::new();
    loop {
        let page = client
            .list_agents(request(query.clone()))
            .await
            .map_err(|s| refused("cannot list agents", &s))?
            .into_inner();
        agents.extend(page.agents);
        if page.next_page_token.is_empty() {
            break;
        }
        query.page_token = page.next_page_token;
    }
    match output {
        Output::Json => agents.iter().try_for_each(json_line)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|a| {
                    let status = match AgentStatus::try_from(a.status).unwrap_or(AgentStatus::Unspecified) {
                        AgentStatus::Online => "online",
                        AgentStatus::Stale => "stale",
                        AgentStatus::Offline => "offline",
                        AgentStatus::Retired => "retired",
                        AgentStatus::Unspecified => "-",
                    };
                    vec![
                        a.name.clone(),
                        status.to_owned(),
                        if a.hostname.is_empty() { "-".to_owned() } else { a.hostname.clone() },
                        if a.version.is_empty() { "-".to_owned() } else { a.version.clone() },
                        when(a.last_seen_time.as_ref()),
                        a.capabilities.join(","),
                    ]
                })
                .collect();
            table(&["NAME", "STATUS", "HOST", "VERSION", "LAST SEEN", "TARGET TYPES"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}
