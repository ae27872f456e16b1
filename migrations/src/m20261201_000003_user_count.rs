//! `user_count`: the number of users, kept by triggers in the same transaction as every
//! insert and delete, so the listing's `total` is one row read instead of a count over the
//! whole table on every page.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &str = "
CREATE FUNCTION user_count_follows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE user_count SET total = total + 1 WHERE id = 1;
  ELSE
    UPDATE user_count SET total = total - 1 WHERE id = 1;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER user_count_follows AFTER INSERT OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION user_count_follows();
";

const SQLITE_UP: &str = "
CREATE TRIGGER user_count_insert AFTER INSERT ON users
  BEGIN UPDATE user_count SET total = total + 1 WHERE id = 1; END;
CREATE TRIGGER user_count_delete AFTER DELETE ON users
  BEGIN UPDATE user_count SET total = total - 1 WHERE id = 1; END;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE user_count (id INTEGER PRIMARY KEY CHECK (id = 1), total BIGINT NOT NULL)",
        )
        .await?;
        db.execute_unprepared("INSERT INTO user_count (id, total) SELECT 1, COUNT(*) FROM users")
            .await?;
        let triggers = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        db.execute_unprepared(triggers).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "DROP TRIGGER user_count_follows ON users; DROP FUNCTION user_count_follows()",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(
                    "DROP TRIGGER user_count_insert; DROP TRIGGER user_count_delete",
                )
                .await?;
            }
        }
        db.execute_unprepared("DROP TABLE user_count").await?;
        Ok(())
    }
}
