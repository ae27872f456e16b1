//! `signing_keys`: the Ed25519 key pairs of `SHELTER_JWT_ALGORITHM=EdDSA`, shared by every
//! instance. Private keys are stored sealed (ChaCha20-Poly1305 under a key derived from
//! `SHELTER_SECRET_KEY`); `generation` is unique so that concurrent first starts or
//! rotations cannot both add a key.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, binary, string_len, timestamp_with_time_zone};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("signing_keys")
                    .if_not_exists()
                    .col(string_len("kid", 64).primary_key())
                    .col(big_integer("generation").unique_key())
                    .col(binary("public_key"))
                    .col(binary("sealed_private_key"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("activates_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("signing_keys").to_owned())
            .await
    }
}
