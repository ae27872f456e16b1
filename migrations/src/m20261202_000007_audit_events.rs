//! `audit_events`: the security events, written in the transactions of the changes they
//! record. No foreign keys: an event outlives the user it is about (`user_deleted`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_null, big_pk_auto, string_len, string_len_null, text, timestamp_with_time_zone,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_events")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(timestamp_with_time_zone("time"))
                    .col(string_len("event_type", 32))
                    .col(big_integer_null("actor_id"))
                    .col(big_integer_null("user_id"))
                    .col(string_len_null("ip", 45))
                    .col(string_len_null("user_agent", 512))
                    .col(string_len_null("request_id", 128))
                    .col(text("details"))
                    .to_owned(),
            )
            .await?;
        // The listing filters by user or type, newest (highest id) first; the purge by time.
        for (name, column) in [
            ("audit_events_user_idx", "user_id"),
            ("audit_events_type_idx", "event_type"),
            ("audit_events_time_idx", "time"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table("audit_events")
                        .col(column)
                        .col("id")
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_events").to_owned())
            .await
    }
}
