//! What the OpenID Connect provider remembers, and nothing of what is in flight: an
//! authorization request and its code are sealed values the browser and the client carry,
//! so the database sees a write only when a code is redeemed.
//!
//! - `oauth_grants`: a user's consent to a client, for the scopes it names.
//! - `oauth_authorizations`: one row per redeemed code, the family of every token issued
//!   from it; a code presented twice finds its row and revokes it. Bound to the sign-in
//!   (`session_id`) it came from, which is how ending a sign-in ends its tokens and finds
//!   the clients to tell.
//! - `oauth_refresh_tokens`: their SHA-256, rotated like first-party ones.
//! - `oauth_revoked_tokens`: the `jti` of access tokens revoked before they expire.
//! - `oauth_logout_outbox`: back-channel logouts to deliver, queued in the transactions that
//!   end sign-ins, drained by the delivery worker with retries.
//! - `sessions.method`: how the sign-in was made (the ID token's `amr`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, integer, string_len, string_len_null, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

use crate::owned_by_user;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn of_client(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("{table}_client_id_fkey"))
        .from(table, "client_id")
        .to("oauth_clients", "client_id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(
    name: &'static str,
    table: &'static str,
    columns: &[&'static str],
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    index
}

/// The back-channel logouts waiting to be delivered.
async fn logout_outbox(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("oauth_logout_outbox")
                .if_not_exists()
                .col(big_integer("id").primary_key().auto_increment())
                .col(string_len("client_id", 64))
                .col(text("uri"))
                .col(big_integer("user_id"))
                .col(string_len("session_id", 36))
                .col(string_len("status", 16))
                .col(integer("attempts"))
                .col(timestamp_with_time_zone("next_attempt_at"))
                .col(timestamp_with_time_zone_null("locked_until"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("sent_at"))
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(
            "oauth_logout_outbox_due_idx",
            "oauth_logout_outbox",
            &["status", "next_attempt_at"],
        ))
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("oauth_grants")
                    .if_not_exists()
                    .col(big_integer("user_id"))
                    .col(string_len("client_id", 64))
                    .col(text("scopes"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("user_id").col("client_id"))
                    .foreign_key(&mut owned_by_user("oauth_grants"))
                    .foreign_key(&mut of_client("oauth_grants"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("oauth_authorizations")
                    .if_not_exists()
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("client_id", 64))
                    .col(big_integer("user_id"))
                    .col(string_len("session_id", 36))
                    .col(text("scopes"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .foreign_key(&mut owned_by_user("oauth_authorizations"))
                    .foreign_key(&mut of_client("oauth_authorizations"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "oauth_authorizations_session_idx",
                "oauth_authorizations",
                &["session_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "oauth_authorizations_user_client_idx",
                "oauth_authorizations",
                &["user_id", "client_id"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("oauth_refresh_tokens")
                    .if_not_exists()
                    .col(string_len("token_hash", 64).primary_key())
                    .col(string_len("authorization_id", 36))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("spent_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("oauth_refresh_tokens_authorization_id_fkey")
                            .from("oauth_refresh_tokens", "authorization_id")
                            .to("oauth_authorizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "oauth_refresh_tokens_authorization_idx",
                "oauth_refresh_tokens",
                &["authorization_id"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("oauth_revoked_tokens")
                    .if_not_exists()
                    .col(string_len("jti", 64).primary_key())
                    .col(timestamp_with_time_zone("expires_at"))
                    .to_owned(),
            )
            .await?;
        logout_outbox(manager).await?;
        manager
            .alter_table(
                Table::alter()
                    .table("sessions")
                    .add_column(string_len_null("method", 32))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("sessions")
                    .drop_column("method")
                    .to_owned(),
            )
            .await?;
        for table in [
            "oauth_logout_outbox",
            "oauth_revoked_tokens",
            "oauth_refresh_tokens",
            "oauth_authorizations",
            "oauth_grants",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
