//! Shelter's schema migrations. They run unchanged on SQLite and PostgreSQL, and name tables
//! and columns with strings rather than entity types, so an old migration still compiles
//! after an entity changes.

pub use sea_orm_migration::prelude::*;

/// The foreign key of a table's `user_id`: rows owned by a user go with it.
fn owned_by_user(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("{table}_user_id_fkey"))
        .from(table, "user_id")
        .to("users", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

mod m20261123_000001_users;
mod m20261123_000002_sessions_and_outbox;
mod m20261201_000003_user_count;
mod m20261202_000004_sessions;
mod m20261202_000005_signing_keys;
mod m20261202_000006_totp;
mod m20261202_000007_audit_events;
mod m20261203_000008_oauth_clients;
mod m20261203_000009_rsa_keys;
mod m20261203_000010_oauth_grants;
mod m20261204_000011_passkeys;
mod m20261204_000012_identities;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_users::Migration),
            Box::new(m20261123_000002_sessions_and_outbox::Migration),
            Box::new(m20261201_000003_user_count::Migration),
            Box::new(m20261202_000004_sessions::Migration),
            Box::new(m20261202_000005_signing_keys::Migration),
            Box::new(m20261202_000006_totp::Migration),
            Box::new(m20261202_000007_audit_events::Migration),
            Box::new(m20261203_000008_oauth_clients::Migration),
            Box::new(m20261203_000009_rsa_keys::Migration),
            Box::new(m20261203_000010_oauth_grants::Migration),
            Box::new(m20261204_000011_passkeys::Migration),
            Box::new(m20261204_000012_identities::Migration),
        ]
    }
}
