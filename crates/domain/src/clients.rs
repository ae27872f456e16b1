//! OAuth clients: the applications that sign their users in with Shelter (OpenID Connect).
//! Their settings are parsed once into the types here; [`ClientService`] keeps the
//! registry's rules (only superusers and the command line manage it; a confidential
//! client's secret is shown once and kept as its SHA-256) and [`ClientStore`] is its port.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore as _;

use crate::error::{StorageError, Unavailable};
use crate::ports::Clock;
use crate::token::{SecretToken, TokenHash};
use crate::user::User;

/// A client's public identifier: 22 characters of base64url (128 random bits), so that ids
/// cannot be enumerated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A presented id: 1 to 64 visible ASCII characters. Whether it names a client is the
    /// store's to say.
    ///
    /// # Errors
    /// Anything else, which names no client.
    pub fn parse(raw: &str) -> Result<Self, NoSuchClient> {
        if (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(NoSuchClient)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that cannot be a client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such client")]
pub struct NoSuchClient;

/// Generates `as_str`, `parse` and `ALL` for an enum of the protocol's words.
macro_rules! protocol_words {
    ($name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|value| value.as_str() == raw)
            }
        }
    };
}

/// Whether a client can keep a secret (a server) or not (a single-page or native app).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Confidential,
    Public,
}

protocol_words!(ClientType { Confidential => "confidential", Public => "public" });

/// The OAuth grants a client may use at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

protocol_words!(GrantType {
    AuthorizationCode => "authorization_code",
    RefreshToken => "refresh_token",
    ClientCredentials => "client_credentials",
});

/// The scopes Shelter knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    OpenId,
    Profile,
    Email,
    OfflineAccess,
}

protocol_words!(Scope {
    OpenId => "openid",
    Profile => "profile",
    Email => "email",
    OfflineAccess => "offline_access",
});

/// A URI Shelter sends a browser or a request to on a client's behalf: `https`, or `http`
/// on a loopback host (development and native apps), without a fragment. Kept as given and
/// compared as an exact string, as OAuth 2.1 requires.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientUri(String);

/// Why a string is not a [`ClientUri`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientUriError {
    #[error("must be an absolute URI of at most 2000 characters")]
    Malformed,
    #[error("must be https, or http on 127.0.0.1, [::1] or localhost")]
    Insecure,
    #[error("must not have a fragment")]
    Fragment,
}

impl ClientUri {
    pub const MAX_CHARS: usize = 2000;

    /// # Errors
    /// A string that is not an absolute URI, is not https (or loopback http), or has a
    /// fragment.
    pub fn parse(raw: &str) -> Result<Self, ClientUriError> {
        if raw.is_empty()
            || raw.chars().count() > Self::MAX_CHARS
            || raw.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(ClientUriError::Malformed);
        }
        let uri = url::Url::parse(raw).map_err(|_| ClientUriError::Malformed)?;
        if raw.contains('#') {
            return Err(ClientUriError::Fragment);
        }
        let loopback = matches!(
            uri.host(),
            Some(
                url::Host::Domain("localhost")
                    | url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST)
                    | url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST)
            )
        );
        match uri.scheme() {
            "https" if uri.host().is_some() => Ok(Self(raw.to_owned())),
            "http" if loopback => Ok(Self(raw.to_owned())),
            _ => Err(ClientUriError::Insecure),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client's display name, shown to users on the consent page: 1 to 100 characters, no
/// control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {max} characters without control characters")]
pub struct ClientNameError {
    pub max: usize,
}

impl ClientName {
    pub const MAX_CHARS: usize = 100;

    /// # Errors
    /// Empty (once trimmed), too long, or with a control character.
    pub fn parse(raw: &str) -> Result<Self, ClientNameError> {
        let name = raw.trim();
        if name.is_empty()
            || name.chars().count() > Self::MAX_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ClientNameError {
                max: Self::MAX_CHARS,
            });
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an administrator sets on a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub name: ClientName,
    pub redirect_uris: Vec<ClientUri>,
    pub post_logout_redirect_uris: Vec<ClientUri>,
    pub grant_types: BTreeSet<GrantType>,
    pub scopes: BTreeSet<Scope>,
    /// Skips the consent page: a first-party application.
    pub trusted: bool,
    /// PKCE even though the client is confidential (public clients always need it).
    pub require_pkce: bool,
    /// May introspect any token (a resource server), not only its own.
    pub introspection: bool,
    /// The `aud` of its access tokens; its client id when none.
    pub audience: Option<String>,
    pub backchannel_logout_uri: Option<ClientUri>,
}

impl ClientSettings {
    /// The settings of a new client named `name`: the contract's defaults.
    pub fn new(name: ClientName) -> Self {
        Self {
            name,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: [GrantType::AuthorizationCode, GrantType::RefreshToken].into(),
            scopes: Scope::ALL.iter().copied().collect(),
            trusted: false,
            require_pkce: false,
            introspection: false,
            audience: None,
            backchannel_logout_uri: None,
        }
    }

    /// The rules that tie several settings of a client of `kind` together.
    fn check(&self, kind: ClientType) -> Result<(), ClientError> {
        let invalid = |field, message| Err(ClientError::Invalid { field, message });
        if self.grant_types.is_empty() {
            return invalid("grant_types", "must name at least one grant type");
        }
        if self.scopes.is_empty() {
            return invalid("scopes", "must name at least one scope");
        }
        if self.grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty()
        {
            return invalid(
                "redirect_uris",
                "is required unless the client only uses client_credentials",
            );
        }
        if kind == ClientType::Public && self.grant_types.contains(&GrantType::ClientCredentials) {
            return invalid(
                "grant_types",
                "client_credentials needs a confidential client: a public one has no secret",
            );
        }
        if self.audience.as_ref().is_some_and(|audience| {
            audience.is_empty()
                || audience.chars().count() > 200
                || audience.chars().any(char::is_control)
        }) {
            return invalid(
                "audience",
                "must be 1 to 200 characters without control characters",
            );
        }
        Ok(())
    }
}

/// A registered client, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub kind: ClientType,
    pub settings: ClientSettings,
    /// The SHA-256 of a confidential client's secret.
    pub secret_hash: Option<TokenHash>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes to a client's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<ClientName>,
    pub redirect_uris: Option<Vec<ClientUri>>,
    pub post_logout_redirect_uris: Option<Vec<ClientUri>>,
    pub grant_types: Option<BTreeSet<GrantType>>,
    pub scopes: Option<BTreeSet<Scope>>,
    pub trusted: Option<bool>,
    pub require_pkce: Option<bool>,
    pub introspection: Option<bool>,
    pub audience: Option<String>,
    pub backchannel_logout_uri: Option<ClientUri>,
}

impl ClientChanges {
    /// Sets what the changes name on `settings`: an update, or a new client's settings
    /// made from the defaults.
    pub fn apply(self, settings: &mut ClientSettings) {
        let ClientChanges {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            trusted,
            require_pkce,
            introspection,
            audience,
            backchannel_logout_uri,
        } = self;
        settings.name = name.unwrap_or_else(|| settings.name.clone());
        if let Some(uris) = redirect_uris {
            settings.redirect_uris = uris;
        }
        if let Some(uris) = post_logout_redirect_uris {
            settings.post_logout_redirect_uris = uris;
        }
        if let Some(grants) = grant_types {
            settings.grant_types = grants;
        }
        if let Some(scopes) = scopes {
            settings.scopes = scopes;
        }
        settings.trusted = trusted.unwrap_or(settings.trusted);
        settings.require_pkce = require_pkce.unwrap_or(settings.require_pkce);
        settings.introspection = introspection.unwrap_or(settings.introspection);
        if audience.is_some() {
            settings.audience = audience;
        }
        if backchannel_logout_uri.is_some() {
            settings.backchannel_logout_uri = backchannel_logout_uri;
        }
    }
}

/// Why a registry request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("The user doesn't have enough privileges")]
    NotSuperuser,
    #[error("Client not found")]
    NotFound,
    /// A rule across settings; `field` names the one to fix.
    #[error("{field} {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<StorageError> for ClientError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(cause) => {
                Self::Unavailable(Unavailable::new(crate::error::Dependency::Database, cause))
            }
            StorageError::Unexpected(cause) => Self::Unexpected(cause),
        }
    }
}

/// The client registry's store.
///
/// Every method MUST return `StorageError::Unavailable` when the database does not answer
/// in time, and MUST record the change's audit event (`oauth_client_created`, `…_updated`,
/// `…_deleted`, `…_secret_rotated`) in the same transaction as the change.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn insert(&self, client: &Client) -> Result<(), StorageError>;

    async fn find(&self, id: &ClientId) -> Result<Option<Client>, StorageError>;

    /// Every client, oldest first.
    async fn list(&self) -> Result<Vec<Client>, StorageError>;

    /// Replaces the settings of the client `client.id`; `false` when there is none.
    async fn update(&self, client: &Client) -> Result<bool, StorageError>;

    /// Replaces a client's secret hash; `false` when there is no such client.
    async fn set_secret(
        &self,
        id: &ClientId,
        secret: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// `false` when there was no such client.
    async fn delete(&self, id: &ClientId) -> Result<bool, StorageError>;
}

/// Who manages the registry: an active superuser of the API or the pages, or the command
/// line (whoever runs it holds the database already). Dynamic registration is not an
/// operator: it creates a public client and nothing else ([`ClientService::register`]).
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    Superuser(&'a User),
    CommandLine,
}

impl Operator<'_> {
    fn check(self) -> Result<(), ClientError> {
        match self {
            Self::Superuser(user) if !user.is_active_superuser() => Err(ClientError::NotSuperuser),
            _ => Ok(()),
        }
    }
}

/// The client registry.
pub struct ClientService {
    store: Arc<dyn ClientStore>,
    clock: Arc<dyn Clock>,
}

impl ClientService {
    pub fn new(store: Arc<dyn ClientStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Registers a client; a confidential one gets a secret, returned this once.
    ///
    /// # Errors
    /// `NotSuperuser`, `Invalid` for settings that contradict each other, or the store's.
    pub async fn create(
        &self,
        operator: Operator<'_>,
        kind: ClientType,
        settings: ClientSettings,
    ) -> Result<(Client, Option<SecretToken>), ClientError> {
        operator.check()?;
        self.insert(kind, settings).await
    }

    async fn insert(
        &self,
        kind: ClientType,
        settings: ClientSettings,
    ) -> Result<(Client, Option<SecretToken>), ClientError> {
        settings.check(kind)?;
        let secret = (kind == ClientType::Confidential).then(SecretToken::generate);
        let now = self.clock.now();
        let client = Client {
            id: ClientId::generate(),
            kind,
            settings,
            secret_hash: secret.as_ref().map(SecretToken::hash),
            created_at: now,
            updated_at: now,
        };
        self.store.insert(&client).await?;
        Ok((client, secret))
    }

    /// Dynamic registration (RFC 7591), open to anyone when the deployment allows it: only
    /// public clients, which must use PKCE and can be granted nothing a user does not allow
    /// on the consent page (never `trusted`, never `client_credentials`).
    ///
    /// # Errors
    /// `Invalid` for settings that break those rules, or the store's.
    pub async fn register(&self, mut settings: ClientSettings) -> Result<Client, ClientError> {
        settings.trusted = false;
        settings.require_pkce = true;
        settings.introspection = false;
        settings.grant_types.remove(&GrantType::ClientCredentials);
        let (client, _) = self.insert(ClientType::Public, settings).await?;
        Ok(client)
    }

    /// # Errors
    /// `NotSuperuser`, or the store's.
    pub async fn list(&self, operator: Operator<'_>) -> Result<Vec<Client>, ClientError> {
        operator.check()?;
        Ok(self.store.list().await?)
    }

    /// # Errors
    /// `NotSuperuser`, `NotFound`, or the store's.
    pub async fn get(&self, operator: Operator<'_>, id: &ClientId) -> Result<Client, ClientError> {
        operator.check()?;
        self.store.find(id).await?.ok_or(ClientError::NotFound)
    }

    /// Changes a client's settings; its type and secret stay.
    ///
    /// # Errors
    /// `NotSuperuser`, `NotFound`, `Invalid`, or the store's.
    pub async fn update(
        &self,
        operator: Operator<'_>,
        id: &ClientId,
        changes: ClientChanges,
    ) -> Result<Client, ClientError> {
        let mut client = self.get(operator, id).await?;
        changes.apply(&mut client.settings);
        client.settings.check(client.kind)?;
        client.updated_at = self.clock.now();
        if self.store.update(&client).await? {
            Ok(client)
        } else {
            Err(ClientError::NotFound)
        }
    }

    /// A new secret for a confidential client, returned this once; the old one stops
    /// working at once.
    ///
    /// # Errors
    /// `NotSuperuser`, `NotFound`, `Invalid` for a public client, or the store's.
    pub async fn rotate_secret(
        &self,
        operator: Operator<'_>,
        id: &ClientId,
    ) -> Result<(Client, SecretToken), ClientError> {
        let mut client = self.get(operator, id).await?;
        if client.kind == ClientType::Public {
            return Err(ClientError::Invalid {
                field: "type",
                message: "is public: a public client has no secret",
            });
        }
        let secret = SecretToken::generate();
        let hash = secret.hash();
        client.updated_at = self.clock.now();
        if self.store.set_secret(id, &hash, client.updated_at).await? {
            client.secret_hash = Some(hash);
            Ok((client, secret))
        } else {
            Err(ClientError::NotFound)
        }
    }

    /// # Errors
    /// `NotSuperuser`, `NotFound`, or the store's.
    pub async fn delete(&self, operator: Operator<'_>, id: &ClientId) -> Result<(), ClientError> {
        operator.check()?;
        if self.store.delete(id).await? {
            Ok(())
        } else {
            Err(ClientError::NotFound)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockClock;

    fn uri(raw: &str) -> ClientUri {
        ClientUri::parse(raw).expect("a client URI")
    }

    fn service(store: MockClientStore) -> ClientService {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .returning(|| DateTime::from_timestamp(1_800_000_000, 0).expect("time"));
        ClientService::new(Arc::new(store), Arc::new(clock))
    }

    fn settings() -> ClientSettings {
        let mut settings = ClientSettings::new(ClientName::parse("Grafana").expect("name"));
        settings.redirect_uris = vec![uri("https://grafana.example.com/login/generic_oauth")];
        settings
    }

    #[test]
    fn client_uris_are_https_or_loopback_http_without_a_fragment() {
        for good in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?x=1",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]:3000/cb",
        ] {
            assert_eq!(uri(good).as_str(), good, "kept exactly as given");
        }
        for (bad, error) in [
            ("http://app.example.com/cb", ClientUriError::Insecure),
            ("http://127.0.0.2/cb", ClientUriError::Insecure),
            ("com.example.app:/cb", ClientUriError::Insecure),
            ("javascript:alert(1)", ClientUriError::Insecure),
            ("https://app.example.com/cb#x", ClientUriError::Fragment),
            ("/cb", ClientUriError::Malformed),
            ("https://app.example.com/c b", ClientUriError::Malformed),
            ("", ClientUriError::Malformed),
        ] {
            assert_eq!(ClientUri::parse(bad), Err(error), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_confidential_client_gets_a_secret_stored_only_as_its_hash() {
        let mut store = MockClientStore::new();
        store
            .expect_insert()
            .withf(|client| client.secret_hash.is_some() && client.id.as_str().len() == 22)
            .times(1)
            .returning(|_| Ok(()));
        let (client, secret) = service(store)
            .create(Operator::CommandLine, ClientType::Confidential, settings())
            .await
            .expect("created");
        let secret = secret.expect("a secret for a confidential client");
        assert_eq!(secret.expose().len(), 43, "256 bits, base64url");
        assert_eq!(client.secret_hash, Some(secret.hash()));
    }

    #[tokio::test]
    async fn rules_across_settings_are_checked_before_anything_is_stored() {
        type Case = (ClientType, Box<dyn Fn(&mut ClientSettings)>, &'static str);
        let cases: Vec<Case> = vec![
            (
                ClientType::Confidential,
                Box::new(|s| s.redirect_uris.clear()),
                "redirect_uris",
            ),
            (
                ClientType::Public,
                Box::new(|s| {
                    s.grant_types.insert(GrantType::ClientCredentials);
                }),
                "grant_types",
            ),
            (
                ClientType::Confidential,
                Box::new(|s| s.grant_types.clear()),
                "grant_types",
            ),
            (
                ClientType::Confidential,
                Box::new(|s| s.scopes.clear()),
                "scopes",
            ),
            (
                ClientType::Confidential,
                Box::new(|s| s.audience = Some(String::new())),
                "audience",
            ),
        ];
        for (kind, change, field) in cases {
            let mut store = MockClientStore::new();
            store.expect_insert().never();
            let mut settings = settings();
            change(&mut settings);
            let refused = service(store)
                .create(Operator::CommandLine, kind, settings)
                .await
                .expect_err(field);
            assert!(
                matches!(refused, ClientError::Invalid { field: f, .. } if f == field),
                "{field}: {refused:?}"
            );
        }
        // A machine client needs no redirect URI.
        let mut store = MockClientStore::new();
        store.expect_insert().times(1).returning(|_| Ok(()));
        let mut machine = settings();
        machine.redirect_uris.clear();
        machine.grant_types = [GrantType::ClientCredentials].into();
        let (_, secret) = service(store)
            .create(Operator::CommandLine, ClientType::Confidential, machine)
            .await
            .expect("a client_credentials client");
        assert!(secret.is_some());
    }

    #[tokio::test]
    async fn a_public_client_has_no_secret_to_show_or_rotate() {
        let mut store = MockClientStore::new();
        store.expect_insert().times(1).returning(|_| Ok(()));
        let public = service(store)
            .create(Operator::CommandLine, ClientType::Public, settings())
            .await
            .expect("created");
        assert!(public.1.is_none() && public.0.secret_hash.is_none());
        let mut store = MockClientStore::new();
        let stored = public.0.clone();
        store
            .expect_find()
            .returning(move |_| Ok(Some(stored.clone())));
        store.expect_set_secret().never();
        let refused = service(store)
            .rotate_secret(Operator::CommandLine, &public.0.id)
            .await
            .expect_err("no secret");
        assert!(matches!(
            refused,
            ClientError::Invalid { field: "type", .. }
        ));
    }
}
