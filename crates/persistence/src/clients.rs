//! `SeaOrmClientStore`: the OAuth client registry, each change with its audit event in
//! one transaction.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryOrder,
};
use shelter_domain::StorageError;
use shelter_domain::TokenHash;
use shelter_domain::audit::{AuditEvent, EventType, RequestOrigin};
use shelter_domain::clients::{
    Client, ClientId, ClientName, ClientSettings, ClientStore, ClientType, ClientUri, GrantType,
    Scope,
};

use crate::audit;
use crate::entity::oauth_client;
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

pub struct SeaOrmClientStore {
    db: DatabaseConnection,
    writer: Writer,
    timeout: std::time::Duration,
    origin: Arc<dyn RequestOrigin>,
}

impl SeaOrmClientStore {
    pub(crate) fn new(
        db: DatabaseConnection,
        writer: Writer,
        timeout: std::time::Duration,
        origin: Arc<dyn RequestOrigin>,
    ) -> Self {
        Self {
            db,
            writer,
            timeout,
            origin,
        }
    }

    /// Writes `event` about `client` with the request's context, inside `txn`.
    async fn record(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        kind: EventType,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let event = AuditEvent::new(kind, None, None).detail("client_id", client.as_str());
        audit::write(txn, &*self.origin, [event], now).await
    }
}

fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::to_string(&items.into_iter().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

fn to_row(client: &Client) -> oauth_client::ActiveModel {
    let settings = &client.settings;
    oauth_client::ActiveModel {
        client_id: Set(client.id.as_str().to_owned()),
        name: Set(settings.name.as_str().to_owned()),
        client_type: Set(client.kind.as_str().to_owned()),
        secret_hash: Set(client.secret_hash.as_ref().map(|h| h.as_str().to_owned())),
        redirect_uris: Set(json_list(
            settings.redirect_uris.iter().map(ClientUri::as_str),
        )),
        post_logout_redirect_uris: Set(json_list(
            settings
                .post_logout_redirect_uris
                .iter()
                .map(ClientUri::as_str),
        )),
        grant_types: Set(json_list(settings.grant_types.iter().map(|g| g.as_str()))),
        scopes: Set(json_list(settings.scopes.iter().map(|s| s.as_str()))),
        trusted: Set(settings.trusted),
        require_pkce: Set(settings.require_pkce),
        introspection: Set(settings.introspection),
        audience: Set(settings.audience.clone()),
        backchannel_logout_uri: Set(settings
            .backchannel_logout_uri
            .as_ref()
            .map(|uri| uri.as_str().to_owned())),
        created_at: Set(client.created_at),
        updated_at: Set(client.updated_at),
    }
}

/// A stored row as the domain's client. Rows are only written from parsed clients, so a
/// value that does not parse back is a bug or a hand edit: `Unexpected`, naming the column.
fn to_domain(row: &oauth_client::Model) -> Result<Client, StorageError> {
    let bad = |column: &str| {
        StorageError::Unexpected(anyhow::anyhow!(
            "oauth client {}: unreadable {column}",
            row.client_id
        ))
    };
    let list = |raw: &str, column: &str| -> Result<Vec<String>, StorageError> {
        serde_json::from_str(raw).map_err(|_| bad(column))
    };
    let uris = |raw: &str, column: &str| -> Result<Vec<ClientUri>, StorageError> {
        list(raw, column)?
            .iter()
            .map(|uri| ClientUri::parse(uri).map_err(|_| bad(column)))
            .collect()
    };
    let grant_types = list(&row.grant_types, "grant_types")?
        .iter()
        .map(|g| GrantType::parse(g).ok_or_else(|| bad("grant_types")))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let scopes = list(&row.scopes, "scopes")?
        .iter()
        .map(|s| Scope::parse(s).ok_or_else(|| bad("scopes")))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let settings = ClientSettings {
        name: ClientName::parse(&row.name).map_err(|_| bad("name"))?,
        redirect_uris: uris(&row.redirect_uris, "redirect_uris")?,
        post_logout_redirect_uris: uris(
            &row.post_logout_redirect_uris,
            "post_logout_redirect_uris",
        )?,
        grant_types,
        scopes,
        trusted: row.trusted,
        require_pkce: row.require_pkce,
        introspection: row.introspection,
        audience: row.audience.clone(),
        backchannel_logout_uri: row
            .backchannel_logout_uri
            .as_deref()
            .map(|uri| ClientUri::parse(uri).map_err(|_| bad("backchannel_logout_uri")))
            .transpose()?,
    };
    Ok(Client {
        id: ClientId::parse(&row.client_id).map_err(|_| bad("client_id"))?,
        kind: ClientType::parse(&row.client_type).ok_or_else(|| bad("client_type"))?,
        secret_hash: row
            .secret_hash
            .as_deref()
            .map(|hash| TokenHash::from_stored(hash).ok_or_else(|| bad("secret_hash")))
            .transpose()?,
        settings,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[async_trait]
impl ClientStore for SeaOrmClientStore {
    async fn insert(&self, client: &Client) -> Result<(), StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            to_row(client)
                .insert(&txn)
                .await
                .store_context("insert an oauth client")?;
            self.record(
                &txn,
                EventType::OauthClientCreated,
                &client.id,
                client.created_at,
            )
            .await?;
            txn.commit().await.store_context("commit an oauth client")
        })
        .await
    }

    async fn find(&self, id: &ClientId) -> Result<Option<Client>, StorageError> {
        within(self.timeout, async {
            oauth_client::Entity::find_by_id(id.as_str())
                .one(&self.db)
                .await
                .store_context("find an oauth client")?
                .as_ref()
                .map(to_domain)
                .transpose()
        })
        .await
    }

    async fn list(&self) -> Result<Vec<Client>, StorageError> {
        within(self.timeout, async {
            oauth_client::Entity::find()
                .order_by_asc(oauth_client::Column::CreatedAt)
                .order_by_asc(oauth_client::Column::ClientId)
                .all(&self.db)
                .await
                .store_context("list oauth clients")?
                .iter()
                .map(to_domain)
                .collect()
        })
        .await
    }

    async fn update(&self, client: &Client) -> Result<bool, StorageError> {
        // Boxed: the read, the write and the audit event make a large future.
        within(
            self.timeout,
            Box::pin(async {
                let txn = self.writer.begin().await?;
                let Some(current) = oauth_client::Entity::find_by_id(client.id.as_str())
                    .one(&txn)
                    .await
                    .store_context("read an oauth client")?
                else {
                    return Ok(false);
                };
                let mut row = to_row(client);
                // The settings change; what the client is and its secret do not.
                row.client_type = Set(current.client_type);
                row.secret_hash = Set(current.secret_hash);
                row.created_at = Set(current.created_at);
                oauth_client::Entity::update(row)
                    .exec(&txn)
                    .await
                    .store_context("update an oauth client")?;
                self.record(
                    &txn,
                    EventType::OauthClientUpdated,
                    &client.id,
                    client.updated_at,
                )
                .await?;
                txn.commit()
                    .await
                    .store_context("commit an oauth client update")?;
                Ok(true)
            }),
        )
        .await
    }

    async fn set_secret(
        &self,
        id: &ClientId,
        secret: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let Some(current) = oauth_client::Entity::find_by_id(id.as_str())
                .one(&txn)
                .await
                .store_context("read an oauth client")?
            else {
                return Ok(false);
            };
            let mut active = current.into_active_model();
            active.secret_hash = Set(Some(secret.as_str().to_owned()));
            active.updated_at = Set(now);
            active
                .update(&txn)
                .await
                .store_context("set an oauth client's secret")?;
            self.record(&txn, EventType::OauthClientSecretRotated, id, now)
                .await?;
            txn.commit()
                .await
                .store_context("commit an oauth client's secret")?;
            Ok(true)
        })
        .await
    }

    async fn delete(&self, id: &ClientId) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let deleted = oauth_client::Entity::delete_by_id(id.as_str())
                .exec(&txn)
                .await
                .store_context("delete an oauth client")?
                .rows_affected;
            if deleted == 0 {
                return Ok(false);
            }
            self.record(&txn, EventType::OauthClientDeleted, id, Utc::now())
                .await?;
            txn.commit()
                .await
                .store_context("commit an oauth client's deletion")?;
            Ok(true)
        })
        .await
    }
}
