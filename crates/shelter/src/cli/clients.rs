//! `shelter clients add|list|show|remove|rotate-secret`: the OAuth client registry from the
//! command line, with the rules and audit events of `POST /oauth/clients`. This is how a
//! deployment registers its first client before any superuser has signed in.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use shelter_domain::SecretToken;
use shelter_domain::clients::{
    Client, ClientChanges, ClientId, ClientName, ClientService, ClientSettings, ClientType,
    ClientUri, GrantType, Operator, Scope,
};
use shelter_domain::ports::SystemClock;

use crate::app;
use crate::config::Settings;

fn grant_type(raw: &str) -> Result<GrantType, String> {
    GrantType::parse(raw)
        .ok_or_else(|| "must be authorization_code, refresh_token or client_credentials".into())
}

fn scope(raw: &str) -> Result<Scope, String> {
    Scope::parse(raw).ok_or_else(|| "must be openid, profile, email or offline_access".into())
}

fn client_type(raw: &str) -> Result<ClientType, String> {
    ClientType::parse(raw).ok_or_else(|| "must be confidential or public".into())
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client; a confidential one's secret is printed this once.
    Add(AddClient),
    /// One line per client.
    List,
    /// Every setting of one client (never its secret).
    Show { client_id: String },
    /// Delete a client.
    Remove { client_id: String },
    /// A new secret for a confidential client, printed this once; the old one stops working.
    RotateSecret { client_id: String },
    /// Replace a client's redirect URIs.
    SetRedirectUris {
        client_id: String,
        #[arg(value_parser = ClientUri::parse, required = true)]
        redirect_uris: Vec<ClientUri>,
    },
}

#[derive(Args)]
pub struct AddClient {
    /// Shown to users on the consent page.
    #[arg(long, value_parser = ClientName::parse)]
    name: ClientName,
    /// Repeat for each; https, or http on a loopback host.
    #[arg(long = "redirect-uri", value_parser = ClientUri::parse)]
    redirect_uris: Vec<ClientUri>,
    #[arg(long = "post-logout-redirect-uri", value_parser = ClientUri::parse)]
    post_logout_redirect_uris: Vec<ClientUri>,
    /// `confidential` (a secret) or `public` (PKCE, no secret).
    #[arg(long = "type", value_parser = client_type, default_value = "confidential")]
    kind: ClientType,
    /// Repeat for each; default `authorization_code` and `refresh_token`.
    #[arg(long = "grant-type", value_parser = grant_type)]
    grant_types: Vec<GrantType>,
    /// Repeat for each; default `openid`, `profile`, `email` and `offline_access`.
    #[arg(long = "scope", value_parser = scope)]
    scopes: Vec<Scope>,
    /// Skip the consent page (a first-party application).
    #[arg(long)]
    trusted: bool,
    /// Require PKCE of this confidential client too.
    #[arg(long)]
    require_pkce: bool,
    /// May introspect every token (a resource server).
    #[arg(long)]
    introspection: bool,
    #[arg(long)]
    audience: Option<String>,
    #[arg(long, value_parser = ClientUri::parse)]
    backchannel_logout_uri: Option<ClientUri>,
}

impl AddClient {
    /// The defaults with what the flags name; a flag not given (an empty list) leaves the
    /// default.
    fn settings(self) -> (ClientType, ClientSettings) {
        let mut settings = ClientSettings::new(self.name);
        ClientChanges {
            name: None,
            redirect_uris: Some(self.redirect_uris),
            post_logout_redirect_uris: Some(self.post_logout_redirect_uris),
            grant_types: named(self.grant_types),
            scopes: named(self.scopes),
            trusted: Some(self.trusted),
            require_pkce: Some(self.require_pkce),
            introspection: Some(self.introspection),
            audience: self.audience,
            backchannel_logout_uri: self.backchannel_logout_uri,
        }
        .apply(&mut settings);
        (self.kind, settings)
    }
}

/// A repeated flag's values as a set, or `None` when the flag was not given.
fn named<T: Ord>(values: Vec<T>) -> Option<std::collections::BTreeSet<T>> {
    (!values.is_empty()).then(|| values.into_iter().collect())
}

/// Runs one command against the database every instance reads; what to print.
///
/// # Errors
/// An unknown client, settings that contradict each other, or a database that does not
/// answer.
pub async fn run(settings: &Settings, command: ClientsCommand) -> anyhow::Result<String> {
    let database = app::open_database(settings).await?;
    let service = ClientService::new(Arc::new(database.clients()), Arc::new(SystemClock));
    let id = |raw: &str| ClientId::parse(raw).map_err(|_| anyhow::anyhow!("no client {raw:?}"));
    let console = Operator::CommandLine;
    let out = match command {
        ClientsCommand::Add(add) => {
            let (kind, settings) = add.settings();
            let (client, secret) = service.create(console, kind, settings).await?;
            described(&client, secret.as_ref())
        }
        ClientsCommand::List => {
            let mut out = String::from("client_id\ttype\tname\tredirect_uris\n");
            for client in service.list(console).await? {
                let uris: Vec<_> = client
                    .settings
                    .redirect_uris
                    .iter()
                    .map(ClientUri::as_str)
                    .collect();
                let _ = writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    client.id,
                    client.kind.as_str(),
                    client.settings.name.as_str(),
                    uris.join(" ")
                );
            }
            out
        }
        ClientsCommand::Show { client_id } => {
            described(&service.get(console, &id(&client_id)?).await?, None)
        }
        ClientsCommand::Remove { client_id } => {
            service.delete(console, &id(&client_id)?).await?;
            format!("removed client {client_id}")
        }
        ClientsCommand::RotateSecret { client_id } => {
            let (client, secret) = service.rotate_secret(console, &id(&client_id)?).await?;
            described(&client, Some(&secret))
        }
        ClientsCommand::SetRedirectUris {
            client_id,
            redirect_uris,
        } => {
            let changes = ClientChanges {
                redirect_uris: Some(redirect_uris),
                ..ClientChanges::default()
            };
            described(
                &service.update(console, &id(&client_id)?, changes).await?,
                None,
            )
        }
    };
    database.close().await;
    Ok(out)
}

/// One `setting: value` line each; the secret, when given, last and said to be shown once.
fn described(client: &Client, secret: Option<&SecretToken>) -> String {
    let settings = &client.settings;
    let list = |items: Vec<&str>| items.join(" ");
    let mut out = String::new();
    let _ = writeln!(out, "client_id: {}", client.id);
    let _ = writeln!(out, "name: {}", settings.name.as_str());
    let _ = writeln!(out, "type: {}", client.kind.as_str());
    let _ = writeln!(
        out,
        "redirect_uris: {}",
        list(
            settings
                .redirect_uris
                .iter()
                .map(ClientUri::as_str)
                .collect()
        )
    );
    let _ = writeln!(
        out,
        "post_logout_redirect_uris: {}",
        list(
            settings
                .post_logout_redirect_uris
                .iter()
                .map(ClientUri::as_str)
                .collect()
        )
    );
    let _ = writeln!(
        out,
        "grant_types: {}",
        list(settings.grant_types.iter().map(|g| g.as_str()).collect())
    );
    let _ = writeln!(
        out,
        "scopes: {}",
        list(settings.scopes.iter().map(|s| s.as_str()).collect())
    );
    let _ = writeln!(out, "trusted: {}", settings.trusted);
    let _ = writeln!(out, "require_pkce: {}", settings.require_pkce);
    let _ = writeln!(out, "introspection: {}", settings.introspection);
    let _ = writeln!(
        out,
        "created_at: {}",
        client.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    if let Some(secret) = secret {
        let _ = writeln!(
            out,
            "client_secret: {} (shown this once; it is stored only as a hash)",
            secret.expose()
        );
    }
    out
}
