//! Refresh tokens (one family per login), one-time tokens (email verification, password
//! reset) and the email outbox. Tokens are stored only as SHA-256 hashes.

use sea_orm_migration::prelude::*;

use crate::owned_by_user;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, boolean, integer, string_len, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("refresh_tokens")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(string_len("family_id", 36))
                    .col(big_integer("user_id"))
                    .col(string_len("token_hash", 64).unique_key())
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .col(boolean("revoked").default(false))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut owned_by_user("refresh_tokens"))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("refresh_tokens_family_idx", "family_id"),
            ("refresh_tokens_user_idx", "user_id"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table("refresh_tokens")
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("one_time_tokens")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("user_id"))
                    .col(string_len("purpose", 20))
                    .col(string_len("token_hash", 64).unique_key())
                    .col(string_len("email", 254))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut owned_by_user("one_time_tokens"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("one_time_tokens_user_idx")
                    .table("one_time_tokens")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("email_outbox")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(string_len("recipient", 254))
                    .col(string_len("kind", 32))
                    .col(text("payload"))
                    .col(string_len("status", 16))
                    .col(integer("attempts").default(0))
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(timestamp_with_time_zone_null("locked_until"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("email_outbox_due_idx")
                    .table("email_outbox")
                    .col("status")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["email_outbox", "one_time_tokens", "refresh_tokens"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
