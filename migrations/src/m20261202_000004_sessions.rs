//! `sessions`: one row per login, with what its user sees of it (client address, user agent,
//! when it was last used) and whether it has ended. Refresh-token families become its
//! tokens: `refresh_tokens.family_id` is the session's id. Existing families get a row each.

use sea_orm_migration::prelude::*;

use crate::owned_by_user;
use sea_orm_migration::schema::{
    big_integer, string_len, string_len_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A family is ended when its tokens are revoked (revocation always revokes all of them).
const BACKFILL: &str = "
INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ended_at)
SELECT family_id, MIN(user_id), MIN(created_at), MAX(created_at), MAX(expires_at),
       CASE WHEN MAX(CASE WHEN revoked THEN 1 ELSE 0 END) = 1 THEN MAX(created_at) END
FROM refresh_tokens GROUP BY family_id
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sessions")
                    .if_not_exists()
                    .col(string_len("id", 36).primary_key())
                    .col(big_integer("user_id"))
                    .col(string_len_null("ip", 45))
                    .col(string_len_null("user_agent", 512))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("last_used_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .foreign_key(&mut owned_by_user("sessions"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("sessions_user_idx")
                    .table("sessions")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sessions").to_owned())
            .await
    }
}
