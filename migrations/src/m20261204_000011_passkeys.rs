//! Passwordless sign-in: passkeys and sign-in codes by email.
//!
//! - `passkeys`: a user's WebAuthn credentials, the library's serialised credential beside
//!   the columns that are looked up (`credential_id`, unique across users) or shown.
//! - `passkey_flows`: a ceremony between its "options" and its "finish", keyed by the
//!   SHA-256 of its `flow_token` and deleted by the finish that takes it, so a challenge
//!   works once on whichever instance answers.
//! - `mfa_challenges.passkey_state`: the ceremony of a passkey offered as a second step;
//!   `mfa_challenges.method`: the first factor the second step follows (a password when
//!   empty), for the sign-in's `amr`.
//! - `one_time_tokens.code_hash` and `failures`: an emailed sign-in code is a link token
//!   and a six-digit code in one row; five wrong codes spend it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, string_len, string_len_null, text,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

use crate::owned_by_user;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("passkeys")
                    .if_not_exists()
                    .col(string_len("id", 36).primary_key())
                    .col(big_integer("user_id"))
                    .col(string_len("name", 64))
                    .col(string_len("credential_id", 1400).unique_key())
                    .col(string_len("user_handle", 36))
                    .col(text("credential"))
                    .col(boolean("backed_up"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .foreign_key(&mut owned_by_user("passkeys"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("passkeys_user_idx")
                    .table("passkeys")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("passkey_flows")
                    .if_not_exists()
                    .col(string_len("token_hash", 64).primary_key())
                    .col(string_len("purpose", 16))
                    .col(big_integer_null("user_id"))
                    .col(string_len_null("user_handle", 36))
                    .col(text("state"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .to_owned(),
            )
            .await?;
        let mut state = ColumnDef::new("passkey_state");
        state.text().null();
        let mut method = ColumnDef::new("method");
        method.string_len(32).null();
        for column in [&mut state, &mut method] {
            manager
                .alter_table(
                    Table::alter()
                        .table("mfa_challenges")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let mut code = ColumnDef::new("code_hash");
        code.string_len(64).null();
        let mut failures = ColumnDef::new("failures");
        failures.integer().not_null().default(0);
        for column in [&mut code, &mut failures] {
            manager
                .alter_table(
                    Table::alter()
                        .table("one_time_tokens")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["code_hash", "failures"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("one_time_tokens")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in ["passkey_state", "method"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("mfa_challenges")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in ["passkey_flows", "passkeys"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
