//! The TOTP second factor: its sealed secret and state on the user's row (so the user
//! cache carries it and every change to it is a change to the user), the last time step
//! used (so a code cannot be replayed), the recovery codes (SHA-256), and the `mfa_token`s
//! of logins waiting for their second step.

use sea_orm_migration::prelude::*;

use crate::owned_by_user;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, binary_null, boolean, integer, string_len,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one column per ALTER TABLE.
        for column in [
            binary_null("totp_secret"),
            boolean("totp_enabled").default(false).to_owned(),
            big_integer_null("totp_last_step"),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table("users")
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("recovery_codes")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("user_id"))
                    .col(string_len("code_hash", 64))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .foreign_key(&mut owned_by_user("recovery_codes"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("recovery_codes_user_idx")
                    .table("recovery_codes")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("mfa_challenges")
                    .if_not_exists()
                    .col(string_len("token_hash", 64).primary_key())
                    .col(big_integer("user_id"))
                    .col(integer("failures").default(0))
                    .col(boolean("spent").default(false))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(&mut owned_by_user("mfa_challenges"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["mfa_challenges", "recovery_codes"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in ["totp_secret", "totp_enabled", "totp_last_step"] {
            manager
                .alter_table(Table::alter().table("users").drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
