//! The SQL of `DeploymentStore`, expanded for both backends like `sql.rs`.

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::deployment::{Deployment, DeploymentState};
use sqlx::Row;

use super::{PostgresStore, SqliteStore};
use crate::store::deployments::{DeploymentQuery, DeploymentStore};

const DEPLOYMENT_COLUMNS: &str = "certificate_id, target_id, version, state, served_fingerprint, message, \
    deploy_time, verify_time, update_time, job";

/// The WHERE clause of a listing and its text values, from `$1`.
fn list_conditions(q: &DeploymentQuery) -> (String, Vec<String>) {
    let mut conds = Vec::new();
    let mut values = Vec::new();
    let mut add = |cond: &dyn Fn(usize) -> String, value: String| {
        values.push(value);
        conds.push(cond(values.len()));
    };
    if let Some(id) = &q.certificate_id {
        add(&|n| format!("certificate_id = ${n}"), id.clone());
    }
    if let Some(id) = &q.target_id {
        add(&|n| format!("target_id = ${n}"), id.clone());
    }
    if let Some(state) = q.state {
        add(&|n| format!("state = ${n}"), state.as_str().to_owned());
    }
    if let Some((certificate, target)) = &q.after {
        add(&|n| format!("(certificate_id, target_id) > (${n}, ${})", n + 1), certificate.clone());
        values.push(target.clone());
    }
    let clause = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    (clause, values)
}

macro_rules! deployment_store {
    ($store:ident, $db:ty, $row:ty) => {
        impl $store {
            fn deployment_from_row(row: &$row) -> Result<Deployment, StoreError> {
                let state: String = row.try_get("state")?;
                Ok(Deployment {
                    certificate_id: row.try_get("certificate_id")?,
                    target_id: row.try_get("target_id")?,
                    version: row.try_get("version")?,
                    state: DeploymentState::parse(&state).ok_or_else(|| {
                        StoreError::Internal(format!("deployments.state holds unknown state `{state}`"))
                    })?,
                    served_fingerprint: row.try_get("served_fingerprint")?,
                    message: row.try_get("message")?,
                    deploy_time: row.try_get("deploy_time")?,
                    verify_time: row.try_get("verify_time")?,
                    update_time: row.try_get("update_time")?,
                    job: row.try_get("job")?,
                })
            }

            /// NOT_FOUND for the first of the deployment's certificate, version
            /// and target that this transaction does not see.
            async fn deployment_references_exist(
                tx: &mut sqlx::Transaction<'static, $db>,
                d: &Deployment,
            ) -> Result<(), StoreError> {
                let certificate = sqlx::query("SELECT 1 FROM certificates WHERE id = $1")
                    .bind(&d.certificate_id)
                    .fetch_optional(&mut **tx)
                    .await?;
                if certificate.is_none() {
                    return Err(StoreError::NotFound { resource: format!("certificates/{}", d.certificate_id) });
                }
                let version =
                    sqlx::query("SELECT 1 FROM certificate_versions WHERE certificate_id = $1 AND version = $2")
                        .bind(&d.certificate_id)
                        .bind(d.version)
                        .fetch_optional(&mut **tx)
                        .await?;
                if version.is_none() {
                    return Err(StoreError::NotFound { resource: d.version_name() });
                }
                let target =
                    sqlx::query("SELECT 1 FROM targets WHERE id = $1").bind(&d.target_id).fetch_optional(&mut **tx).await?;
                if target.is_none() {
                    return Err(StoreError::NotFound { resource: d.target_name() });
                }
                Ok(())
            }
        }

        #[async_trait]
        impl DeploymentStore for $store {
            async fn record_deployments(
                &self,
                deployments: &[Deployment],
                events: Vec<NewAuditEvent>,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                for (d, event) in deployments.iter().zip(&events) {
                    Self::deployment_references_exist(&mut tx, d).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (certificate_id, target_id) DO UPDATE SET version = excluded.version, \
                         state = excluded.state, served_fingerprint = excluded.served_fingerprint, \
                         message = excluded.message, deploy_time = excluded.deploy_time, \
                         verify_time = excluded.verify_time, update_time = excluded.update_time, job = excluded.job"
                    )))
                    .bind(&d.certificate_id)
                    .bind(&d.target_id)
                    .bind(d.version)
                    .bind(d.state.as_str())
                    .bind(&d.served_fingerprint)
                    .bind(&d.message)
                    .bind(d.deploy_time)
                    .bind(d.verify_time)
                    .bind(d.update_time)
                    .bind(&d.job)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match &e {
                        // Deleted since the check, by a transaction that committed in between.
                        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                            resource: format!("{} or {}", d.version_name(), d.target_name()),
                        },
                        _ => StoreError::from(e),
                    })?;
                    Self::outbox(&mut tx, event).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_deployments(&self, query: &DeploymentQuery) -> Result<Vec<Deployment>, StoreError> {
                let (clause, values) = list_conditions(query);
                let sql = format!(
                    "SELECT {DEPLOYMENT_COLUMNS} FROM deployments{clause} ORDER BY certificate_id, target_id LIMIT ${}",
                    values.len() + 1
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for value in values {
                    q = q.bind(value);
                }
                let rows = q.bind(query.limit).fetch_all(&self.pool).await?;
                rows.iter().map(Self::deployment_from_row).collect()
            }
        }
    };
}

deployment_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
deployment_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
