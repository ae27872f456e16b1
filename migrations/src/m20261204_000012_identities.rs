//! Sign-in with other providers.
//!
//! - `user_identities`: an account at an upstream OpenID Connect provider linked to a user,
//!   found by (`provider`, `subject`); a user links at most one account per provider.
//! - `users.password_set`: false for a user created from a provider, whose stored hash is of
//!   a secret nobody was told; a password reset sets it. It decides whether the password
//!   counts as a way to sign in when an identity is unlinked.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, string_len, string_len_null, timestamp_with_time_zone,
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
                    .table("user_identities")
                    .if_not_exists()
                    .col(big_integer("user_id"))
                    .col(string_len("provider", 64))
                    .col(string_len("subject", 255))
                    .col(string_len_null("email", 320))
                    .col(timestamp_with_time_zone("linked_at"))
                    .primary_key(Index::create().col("provider").col("subject"))
                    .foreign_key(&mut owned_by_user("user_identities"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .unique()
                    .name("user_identities_user_provider_key")
                    .table("user_identities")
                    .col("user_id")
                    .col("provider")
                    .to_owned(),
            )
            .await?;
        let mut password_set = ColumnDef::new("password_set");
        password_set.boolean().not_null().default(true);
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(&mut password_set)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .drop_column("password_set")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table("user_identities")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
