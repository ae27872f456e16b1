//! `SeaOrmSigningKeyStore`: the signing keys every instance shares.

use async_trait::async_trait;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use shelter_domain::StorageError;
use shelter_domain::audit::{AuditEvent, EventType, RequestOrigin};
use shelter_domain::keys::{KeyAlgorithm, SigningKeyStore, StoredKey};
use std::sync::Arc;

use crate::audit;
use crate::entity::signing_key;
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

pub struct SeaOrmSigningKeyStore {
    db: DatabaseConnection,
    writer: Writer,
    timeout: std::time::Duration,
    origin: Arc<dyn RequestOrigin>,
}

impl SeaOrmSigningKeyStore {
    pub(crate) fn new(
        db: DatabaseConnection,
        writer: Writer,
        timeout: std::time::Duration,
        origin: Arc<dyn RequestOrigin>,
    ) -> Self {
        Self {
            db,
            writer,
            timeout,
            origin,
        }
    }
}

#[async_trait]
impl SigningKeyStore for SeaOrmSigningKeyStore {
    async fn all(&self) -> Result<Vec<StoredKey>, StorageError> {
        within(self.timeout, async {
            signing_key::Entity::find()
                .order_by_asc(signing_key::Column::Generation)
                .all(&self.db)
                .await
                .store_context("read the signing keys")?
                .into_iter()
                .map(|row| {
                    let algorithm = KeyAlgorithm::parse(&row.algorithm).ok_or_else(|| {
                        StorageError::Unexpected(anyhow::anyhow!(
                            "signing key {}: unknown algorithm {:?}",
                            row.kid,
                            row.algorithm
                        ))
                    })?;
                    Ok(StoredKey {
                        kid: row.kid,
                        algorithm,
                        generation: row.generation,
                        public_key: row.public_key,
                        sealed_private_key: row.sealed_private_key,
                        created_at: row.created_at,
                        activates_at: row.activates_at,
                    })
                })
                .collect()
        })
        .await
    }

    async fn add(&self, key: StoredKey) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let generation = key.generation;
            let kid = key.kid.clone();
            let created_at = key.created_at;
            let algorithm = key.algorithm;
            let txn = self.writer.begin().await?;
            // A family's first key is made at the first start; every later one by a
            // rotation, which the audit log records.
            let rotation = signing_key::Entity::find()
                .filter(signing_key::Column::Algorithm.eq(algorithm.as_str()))
                .count(&txn)
                .await
                .store_context("count the signing keys")?
                > 0;
            let inserted = signing_key::ActiveModel {
                kid: Set(key.kid),
                generation: Set(key.generation),
                algorithm: Set(key.algorithm.as_str().to_owned()),
                public_key: Set(key.public_key),
                sealed_private_key: Set(key.sealed_private_key),
                created_at: Set(key.created_at),
                activates_at: Set(key.activates_at),
            }
            .insert(&txn)
            .await;
            match inserted {
                Ok(_) => {
                    if rotation {
                        let rotated = AuditEvent::new(EventType::KeysRotated, None, None)
                            .detail("kid", kid)
                            .detail("algorithm", algorithm.as_str())
                            .detail("generation", generation.to_string());
                        audit::write(&txn, &*self.origin, [rotated], created_at).await?;
                    }
                    txn.commit().await.store_context("commit a signing key")?;
                    Ok(true)
                }
                Err(error)
                    if matches!(
                        error.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    Ok(false)
                }
                Err(error) => Err(error).store_context("add a signing key"),
            }
        })
        .await
    }
}
