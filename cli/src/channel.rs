//! `certctl channel ...`: the notification service's channels, through the gateway.

use std::process::ExitCode;

use anyhow::Context as _;
use certctl_proto::notification::channel::Config;
use certctl_proto::notification::notification_service_client::NotificationServiceClient;
use certctl_proto::notification::{
    Channel, CreateChannelRequest, EmailConfig, ListChannelsRequest, OpsgenieConfig, PagerDutyConfig, SlackConfig,
    SmtpSecurity, TeamsConfig, TestChannelRequest, WebhookConfig,
};
use tonic::transport::Channel as Transport;

use crate::ServerAddress;
use crate::admin::{Output, connect, json_line, qualify, refused, request, table, when};

/// Holds a channel's secret, so it stays out of the shell history and `ps`.
pub const SECRET_ENV: &str = "CERTCTL_CHANNEL_SECRET";

#[derive(Debug, clap::Subcommand)]
pub enum ChannelCommand {
    /// Lists channels, by name.
    List {
        /// Only channels of this kind: email, webhook, slack, teams, pagerduty or opsgenie.
        #[arg(long, value_enum)]
        kind: Option<Kind>,
        /// Prints only the channels' names, one a line (for `$(...)` in scripts).
        #[arg(long, short, conflicts_with = "output")]
        quiet: bool,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
    /// Creates a channel; the platform checks its configuration and seals its secret.
    Create(CreateArgs),
    /// Sends a test message now and prints what the endpoint answered; exits 1 if it was not delivered.
    Test {
        /// `channels/ID` (or ID).
        name: String,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
        #[command(flatten)]
        server: ServerAddress,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Email,
    Webhook,
    Slack,
    Teams,
    Pagerduty,
    Opsgenie,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::Teams => "teams",
            Kind::Pagerduty => "pagerduty",
            Kind::Opsgenie => "opsgenie",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Security {
    Starttls,
    ImplicitTls,
    None,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The id: lower-case letters, digits and `-`, at most 63.
    id: String,
    /// The channel kind.
    #[arg(long, value_enum)]
    kind: Kind,
    #[arg(long, default_value = "")]
    display_name: String,
    /// webhook: the URL that receives the JSON POST; slack, teams: the incoming-webhook URL;
    /// pagerduty: the Events API URL; opsgenie: the API URL (both have defaults).
    #[arg(long = "url", default_value = "")]
    endpoint: String,
    /// webhook: the signing key; pagerduty: the routing key; opsgenie: the API key; email: the SMTP password.
    /// Better given in CERTCTL_CHANNEL_SECRET.
    #[arg(long, env = SECRET_ENV, default_value = "", hide_env_values = true)]
    secret: String,
    /// email: the SMTP server.
    #[arg(long, default_value = "")]
    smtp_host: String,
    /// email: the SMTP port [default: the security mode's usual port].
    #[arg(long, default_value_t = 0)]
    smtp_port: u16,
    /// email: starttls, implicit-tls or none [default: starttls].
    #[arg(long, value_enum)]
    smtp_security: Option<Security>,
    /// email: the SMTP user; none for a relay without authentication.
    #[arg(long, default_value = "")]
    username: String,
    /// email: the sender address.
    #[arg(long = "from", default_value = "")]
    from_address: String,
    /// email: a recipient; repeat for more.
    #[arg(long = "to")]
    to_addresses: Vec<String>,
    /// email: owners' and teams' daily digests go out through this channel.
    #[arg(long)]
    send_digests: bool,
    /// Created disabled: routing skips it until it is enabled.
    #[arg(long)]
    disabled: bool,
    /// Makes a retried create idempotent: the same id returns the first result.
    #[arg(long, default_value = "")]
    request_id: String,
    #[command(flatten)]
    server: ServerAddress,
}

pub async fn run(command: ChannelCommand) -> anyhow::Result<ExitCode> {
    match command {
        ChannelCommand::List { kind, quiet, output, server } => list(kind, quiet, output, &server).await,
        ChannelCommand::Create(args) => create(args).await,
        ChannelCommand::Test { name, output, server } => test(&qualify("channels", &name), output, &server).await,
    }
}

async fn client(server: &ServerAddress) -> anyhow::Result<NotificationServiceClient<Transport>> {
    Ok(NotificationServiceClient::new(connect(server).await?))
}

async fn list(kind: Option<Kind>, quiet: bool, output: Output, server: &ServerAddress) -> anyhow::Result<ExitCode> {
    let mut client = client(server).await?;
    let mut query = ListChannelsRequest {
        page_size: 1000,
        filter: kind.map_or_else(String::new, |k| k.as_str().to_owned()),
        ..Default::default()
    };
    let mut channels = Vec::new();
    loop {
        let page = client
            .list_channels(request(query.clone()))
            .await
            .map_err(|s| refused("cannot list channels", &s))?
            .into_inner();
        channels.extend(page.channels);
        if page.next_page_token.is_empty() {
            break;
        }
        query.page_token = page.next_page_token;
    }
    if quiet {
        channels.iter().for_each(|c| println!("{}", c.name));
        return Ok(ExitCode::SUCCESS);
    }
    match output {
        Output::Json => channels.iter().try_for_each(json_line)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = channels
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        kind_of(c).to_owned(),
                        target(c),
                        if c.disabled { "disabled" } else { "enabled" }.to_owned(),
                        if c.has_secret { "sealed" } else { "-" }.to_owned(),
                        when(c.update_time.as_ref()),
                        c.display_name.clone(),
                    ]
                })
                .collect();
            table(&["NAME", "KIND", "TARGET", "STATE", "SECRET", "UPDATED", "DISPLAY NAME"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let secret = args.secret.clone();
    let config = match args.kind {
        Kind::Email => Config::Email(EmailConfig {
            smtp_host: args.smtp_host,
            smtp_port: i32::from(args.smtp_port),
            security: match args.smtp_security {
                None => SmtpSecurity::Unspecified,
                Some(Security::Starttls) => SmtpSecurity::Starttls,
                Some(Security::ImplicitTls) => SmtpSecurity::ImplicitTls,
                Some(Security::None) => SmtpSecurity::None,
            } as i32,
            username: args.username,
            password: secret,
            from_address: args.from_address,
            to_addresses: args.to_addresses,
            send_digests: args.send_digests,
        }),
        Kind::Webhook => Config::Webhook(WebhookConfig { url: args.endpoint, signing_secret: secret }),
        Kind::Slack => Config::Slack(SlackConfig { webhook_url: args.endpoint }),
        Kind::Teams => Config::Teams(TeamsConfig { webhook_url: args.endpoint }),
        Kind::Pagerduty => Config::Pagerduty(PagerDutyConfig { routing_key: secret, events_url: args.endpoint }),
        Kind::Opsgenie => Config::Opsgenie(OpsgenieConfig { api_key: secret, api_url: args.endpoint }),
    };
    let channel = Channel {
        display_name: args.display_name,
        config: Some(config),
        disabled: args.disabled,
        ..Default::default()
    };
    let created = client(&args.server)
        .await?
        .create_channel(request(CreateChannelRequest {
            channel: Some(channel),
            channel_id: args.id.clone(),
            request_id: args.request_id,
        }))
        .await
        .map_err(|s| refused(format!("cannot create channels/{}", args.id), &s))?
        .into_inner()
        .channel
        .context("the server answered without the channel")?;
    println!("created {} ({})", created.name, kind_of(&created));
    Ok(ExitCode::SUCCESS)
}

async fn test(name: &str, output: Output, server: &ServerAddress) -> anyhow::Result<ExitCode> {
    let answer = client(server)
        .await?
        .test_channel(request(TestChannelRequest { name: name.to_owned() }))
        .await
        .map_err(|s| refused(format!("cannot test {name}"), &s))?
        .into_inner();
    match output {
        Output::Json => json_line(&answer)?,
        Output::Table => {
            println!("{}", outcome(name, answer.delivered, answer.status, &answer.response_excerpt, &answer.error))
        }
    }
    Ok(if answer.delivered { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `channels/x delivered: HTTP 200: ok`, or `channels/x not delivered: why`
/// (the platform's reason names the endpoint's status and answer, if any).
fn outcome(name: &str, delivered: bool, status: i32, excerpt: &str, error: &str) -> String {
    let mut line = format!("{name} {}", if delivered { "delivered" } else { "not delivered" });
    if !delivered && !error.is_empty() {
        line.push_str(&format!(": {}", error.trim()));
        return line;
    }
    if status != 0 {
        line.push_str(&format!(": HTTP {status}"));
    }
    let excerpt = excerpt.trim();
    if !excerpt.is_empty() {
        line.push_str(&format!(": {}", excerpt.replace('\n', " ")));
    }
    line
}

fn kind_of(channel: &Channel) -> &'static str {
    match channel.config {
        Some(Config::Email(_)) => "email",
        Some(Config::Webhook(_)) => "webhook",
        Some(Config::Slack(_)) => "slack",
        Some(Config::Teams(_)) => "teams",
        Some(Config::Pagerduty(_)) => "pagerduty",
        Some(Config::Opsgenie(_)) => "opsgenie",
        None => "?",
    }
}

/// Where a channel sends, as far as the API returns it (secrets and
/// credential-bearing URLs are never returned).
fn target(channel: &Channel) -> String {
    let text = match &channel.config {
        Some(Config::Email(e)) => format!("{} via {}", e.to_addresses.join(","), e.smtp_host),
        Some(Config::Webhook(w)) => w.url.clone(),
        Some(Config::Pagerduty(p)) => p.events_url.clone(),
        Some(Config::Opsgenie(o)) => o.api_url.clone(),
        Some(Config::Slack(_) | Config::Teams(_)) | None => String::new(),
    };
    if text.trim().is_empty() { "-".to_owned() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_lines_say_whether_it_was_delivered_and_what_answered() {
        assert_eq!(outcome("channels/a", true, 200, "ok\n", ""), "channels/a delivered: HTTP 200: ok");
        assert_eq!(
            outcome("channels/a", false, 0, "", "connection refused"),
            "channels/a not delivered: connection refused"
        );
        assert_eq!(
            outcome("channels/a", false, 500, "boom", "the webhook refused it: HTTP 500 boom"),
            "channels/a not delivered: the webhook refused it: HTTP 500 boom"
        );
        assert_eq!(outcome("channels/a", false, 0, "", ""), "channels/a not delivered");
    }
}
