//! `signing_keys.algorithm`: RSA keys for the OpenID Connect provider join the Ed25519 ones.
//! The rows there are Ed25519 (`EdDSA`). `generation` stays unique across both families,
//! so the rule that stops two first starts from both adding a key holds for each.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .add_column(
                        ColumnDef::new("algorithm")
                            .string_len(8)
                            .not_null()
                            .default("EdDSA"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .drop_column("algorithm")
                    .to_owned(),
            )
            .await
    }
}
