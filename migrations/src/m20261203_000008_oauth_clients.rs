//! `oauth_clients`: the applications that sign their users in with Shelter. A confidential
//! client's secret is kept as its SHA-256 (hex): it has 256 bits of entropy, so a fast hash
//! is enough and the token endpoint spends no argon2 on it. Lists (redirect URIs, grants,
//! scopes) are JSON arrays of strings, read whole with their client.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, string_len, string_len_null, text, text_null, timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("oauth_clients")
                    .if_not_exists()
                    .col(string_len("client_id", 64).primary_key())
                    .col(string_len("name", 400))
                    .col(string_len("client_type", 16))
                    .col(string_len_null("secret_hash", 64))
                    .col(text("redirect_uris"))
                    .col(text("post_logout_redirect_uris"))
                    .col(text("grant_types"))
                    .col(text("scopes"))
                    .col(boolean("trusted"))
                    .col(boolean("require_pkce"))
                    .col(boolean("introspection"))
                    .col(string_len_null("audience", 800))
                    .col(text_null("backchannel_logout_uri"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("oauth_clients").to_owned())
            .await
    }
}
