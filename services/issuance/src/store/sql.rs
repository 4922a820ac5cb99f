//! The SQL behind both backends: the same statements for SQLite and
//! PostgreSQL (`$n` placeholders, `RETURNING`, partial indexes), expanded by
//! one macro against each driver's types, as in the inventory.

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::issuance::{Profile, RevocationReason};
use sqlx::Row;

use super::{
    AuthorityRecord, CrlRecord, IssuedRecord, IssuerRecord, Outbox, OutboxEntry, Revocation, RevokedSerial, Store,
};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serialises")
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("corrupt JSON in column {column}: {e}")))
}

const ISSUED_COLUMNS: &str = "issuer_id, serial, authority_id, pem_chain, common_name, sans, profile_id, \
    certificate_id, certificate_version, request_id, not_before, not_after, sealed_key, server_keyed, revoke_time, \
    revocation_reason, revocation_synced, create_time";

const AUTHORITY_COLUMNS: &str = "issuer_id, id, role, parent_id, certificate_pem, chain_pem, sealed_key, \
    key_algorithm, serial_number, fingerprint, subject, not_before, not_after, issuing, create_time";

/// Rows per multi-row INSERT: below SQLite's 32766 bound parameters.
///
/// Multi-row statements number their parameters `?N` on SQLite, which binds
/// them by position: SQLite takes `$N` for a name and looks each one up in
/// a list while preparing, which is quadratic in the parameter count (a
/// 256-row batch of certificates took longer per row than single inserts).
const INSERT_CHUNK: usize = 500;

macro_rules! sql_store {
    ($store:ident, $db:ty, $pool:ty, $row:ty, $begin_write:expr, $row_lock:expr, $param:literal) => {
        /// The issuance store on this backend.
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
        }

        impl $store {
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }

            async fn begin(&self) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                let mut tx = self.pool.begin().await?;
                // SQLite: take the write lock up front so writers queue on
                // busy_timeout instead of failing to upgrade a read lock.
                if let Some(sql) = $begin_write {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                Ok(tx)
            }

            async fn outbox(tx: &mut sqlx::Transaction<'static, $db>, event: &NewAuditEvent) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO outbox (event) VALUES ($1)").bind(json(event)).execute(&mut **tx).await?;
                Ok(())
            }

            fn issuer_from_row(row: &$row) -> Result<IssuerRecord, StoreError> {
                Ok(IssuerRecord {
                    id: row.try_get("id")?,
                    display_name: row.try_get("display_name")?,
                    kind: row.try_get("kind")?,
                    config: from_json("issuers.config", &row.try_get::<String, _>("config")?)?,
                    issuing_authority: row.try_get("issuing_authority")?,
                    create_time: row.try_get("create_time")?,
                })
            }

            fn authority_from_row(row: &$row) -> Result<AuthorityRecord, StoreError> {
                Ok(AuthorityRecord {
                    issuer_id: row.try_get("issuer_id")?,
                    id: row.try_get("id")?,
                    role: row.try_get("role")?,
                    parent_id: row.try_get("parent_id")?,
                    certificate_pem: row.try_get("certificate_pem")?,
                    chain_pem: row.try_get("chain_pem")?,
                    sealed_key: row.try_get("sealed_key")?,
                    key_algorithm: row.try_get("key_algorithm")?,
                    serial_number: row.try_get("serial_number")?,
                    fingerprint: row.try_get("fingerprint")?,
                    subject: row.try_get("subject")?,
                    not_before: row.try_get("not_before")?,
                    not_after: row.try_get("not_after")?,
                    issuing: row.try_get("issuing")?,
                    create_time: row.try_get("create_time")?,
                })
            }

            fn issued_from_row(row: &$row) -> Result<IssuedRecord, StoreError> {
                let revocation = match row.try_get::<Option<i64>, _>("revoke_time")? {
                    None => None,
                    Some(time) => {
                        let code = row.try_get::<Option<i64>, _>("revocation_reason")?.unwrap_or(0);
                        let reason = RevocationReason::from_code(code).ok_or_else(|| {
                            StoreError::Internal(format!("issued.revocation_reason holds unknown code {code}"))
                        })?;
                        Some(Revocation { time, reason })
                    }
                };
                Ok(IssuedRecord {
                    issuer_id: row.try_get("issuer_id")?,
                    serial: row.try_get("serial")?,
                    authority_id: row.try_get("authority_id")?,
                    pem_chain: row.try_get("pem_chain")?,
                    common_name: row.try_get("common_name")?,
                    subject_alt_names: from_json("issued.sans", &row.try_get::<String, _>("sans")?)?,
                    profile_id: row.try_get("profile_id")?,
                    certificate_id: row.try_get("certificate_id")?,
                    certificate_version: row.try_get("certificate_version")?,
                    request_id: row.try_get("request_id")?,
                    not_before: row.try_get("not_before")?,
                    not_after: row.try_get("not_after")?,
                    sealed_key: row.try_get("sealed_key")?,
                    server_keyed: row.try_get("server_keyed")?,
                    revocation,
                    revocation_synced: row.try_get("revocation_synced")?,
                    create_time: row.try_get("create_time")?,
                })
            }

            /// Inserts the rows whose request id is not recorded yet and
            /// returns the serials it inserted.
            async fn insert_issued_chunk(
                tx: &mut sqlx::Transaction<'static, $db>,
                chunk: &[IssuedRecord],
            ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
                let mut sql = format!("INSERT INTO issued ({ISSUED_COLUMNS}) VALUES ");
                for i in 0..chunk.len() {
                    let b = i * 18;
                    if i > 0 {
                        sql.push(',');
                    }
                    sql.push('(');
                    for c in 1..=18 {
                        if c > 1 {
                            sql.push(',');
                        }
                        sql.push_str(&format!(concat!($param, "{}"), b + c));
                    }
                    sql.push(')');
                }
                // A request id seen before is an idempotent retry, not an
                // error: skip the row and let the caller answer with the first.
                sql.push_str(" ON CONFLICT (request_id) DO NOTHING RETURNING issuer_id, serial");
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for r in chunk {
                    query = query
                        .bind(r.issuer_id.clone())
                        .bind(r.serial.clone())
                        .bind(r.authority_id.clone())
                        .bind(r.pem_chain.clone())
                        .bind(r.common_name.clone())
                        .bind(json(&r.subject_alt_names))
                        .bind(r.profile_id.clone())
                        .bind(r.certificate_id.clone())
                        .bind(r.certificate_version.clone())
                        .bind(r.request_id.clone())
                        .bind(r.not_before)
                        .bind(r.not_after)
                        .bind(r.sealed_key.clone())
                        .bind(r.server_keyed)
                        .bind(r.revocation.map(|v| v.time))
                        .bind(r.revocation.map(|v| i64::from(v.reason.code())))
                        .bind(r.revocation_synced)
                        .bind(r.create_time);
                }
                // Only the primary key can still collide (a repeated serial).
                let rows = query.fetch_all(&mut **tx).await.map_err(|e| {
                    StoreError::from_sqlx(e, || match chunk {
                        [one] => one.name(),
                        _ => "a serial number of this batch".to_owned(),
                    })
                })?;
                rows.iter().map(|row| Ok((row.try_get("issuer_id")?, row.try_get("serial")?))).collect()
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn master_key_check(&self, key_id: &str, canary: &str) -> Result<(String, String), StoreError> {
                let mut tx = self.begin().await?;
                let row = sqlx::query("SELECT key_id, canary FROM master_key_check WHERE id = 1")
                    .fetch_optional(&mut *tx)
                    .await?;
                let found = match row {
                    Some(row) => (row.try_get("key_id")?, row.try_get("canary")?),
                    None => {
                        sqlx::query("INSERT INTO master_key_check (id, key_id, canary) VALUES (1, $1, $2)")
                            .bind(key_id)
                            .bind(canary)
                            .execute(&mut *tx)
                            .await?;
                        (key_id.to_owned(), canary.to_owned())
                    }
                };
                tx.commit().await?;
                Ok(found)
            }

            async fn create_issuer(
                &self,
                issuer: &IssuerRecord,
                authorities: &[AuthorityRecord],
                event: NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO issuers (id, display_name, kind, config, issuing_authority, create_time) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&issuer.id)
                .bind(&issuer.display_name)
                .bind(&issuer.kind)
                .bind(json(&issuer.config))
                .bind(&issuer.issuing_authority)
                .bind(issuer.create_time)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, || format!("issuers/{}", issuer.id)))?;
                for a in authorities {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO authorities ({AUTHORITY_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
                    )))
                    .bind(&a.issuer_id)
                    .bind(&a.id)
                    .bind(&a.role)
                    .bind(&a.parent_id)
                    .bind(&a.certificate_pem)
                    .bind(&a.chain_pem)
                    .bind(&a.sealed_key)
                    .bind(&a.key_algorithm)
                    .bind(&a.serial_number)
                    .bind(&a.fingerprint)
                    .bind(&a.subject)
                    .bind(a.not_before)
                    .bind(a.not_after)
                    .bind(a.issuing)
                    .bind(a.create_time)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_issuer(&self, id: &str) -> Result<IssuerRecord, StoreError> {
                let row = sqlx::query("SELECT * FROM issuers WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                match row {
                    Some(row) => Self::issuer_from_row(&row),
                    None => Err(StoreError::NotFound { resource: format!("issuers/{id}") }),
                }
            }

            async fn list_issuers(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<IssuerRecord>, StoreError> {
                let rows = sqlx::query("SELECT * FROM issuers WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(after_id.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::issuer_from_row).collect()
            }

            async fn authorities(&self, issuer_id: &str) -> Result<Vec<AuthorityRecord>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {AUTHORITY_COLUMNS} FROM authorities WHERE issuer_id = $1 ORDER BY create_time, \
                     CASE role WHEN 'root' THEN 0 ELSE 1 END, id"
                )))
                .bind(issuer_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::authority_from_row).collect()
            }

            async fn ensure_profiles(&self, profiles: &[Profile]) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                for p in profiles {
                    sqlx::query(
                        "INSERT INTO profiles (id, body, create_time, update_time) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&p.id)
                    .bind(json(p))
                    .bind(p.create_time)
                    .bind(p.update_time)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn create_profile(&self, profile: &Profile, event: NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                sqlx::query("INSERT INTO profiles (id, body, create_time, update_time) VALUES ($1, $2, $3, $4)")
                    .bind(&profile.id)
                    .bind(json(profile))
                    .bind(profile.create_time)
                    .bind(profile.update_time)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, || profile.name()))?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_profile(&self, id: &str) -> Result<Profile, StoreError> {
                let body: Option<String> = sqlx::query_scalar("SELECT body FROM profiles WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                match body {
                    Some(body) => from_json("profiles.body", &body),
                    None => Err(StoreError::NotFound { resource: format!("profiles/{id}") }),
                }
            }

            async fn list_profiles(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<Profile>, StoreError> {
                let bodies: Vec<String> =
                    sqlx::query_scalar("SELECT body FROM profiles WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after_id.unwrap_or(""))
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                bodies.iter().map(|b| from_json("profiles.body", b)).collect()
            }

            async fn update_profile(&self, profile: &Profile, event: NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("UPDATE profiles SET body = $2, update_time = $3 WHERE id = $1")
                    .bind(&profile.id)
                    .bind(json(profile))
                    .bind(profile.update_time)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: profile.name() });
                }
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_profile(&self, id: &str, now: UnixTime, event: NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                let in_use: Option<String> = sqlx::query_scalar(
                    "SELECT serial FROM issued WHERE profile_id = $1 AND not_after > $2 AND revoke_time IS NULL LIMIT 1",
                )
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(serial) = in_use {
                    return Err(StoreError::FailedPrecondition(format!(
                        "profiles/{id} still governs valid certificates (for example serial {serial}); \
                         delete it once they expire or are revoked"
                    )));
                }
                let done = sqlx::query("DELETE FROM profiles WHERE id = $1").bind(id).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: format!("profiles/{id}") });
                }
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_issued(
                &self,
                issued: &[IssuedRecord],
                events: &[NewAuditEvent],
            ) -> Result<Vec<bool>, StoreError> {
                if issued.len() != events.len() {
                    return Err(StoreError::Internal(format!(
                        "insert_issued: {} certificates but {} audit events",
                        issued.len(),
                        events.len()
                    )));
                }
                let mut tx = self.begin().await?;
                let mut inserted = std::collections::HashSet::new();
                for chunk in issued.chunks(INSERT_CHUNK) {
                    inserted.extend(Self::insert_issued_chunk(&mut tx, chunk).await?);
                }
                let done: Vec<bool> =
                    issued.iter().map(|r| inserted.contains(&(r.issuer_id.clone(), r.serial.clone()))).collect();
                // No change, no event: a skipped repeat records nothing.
                let events: Vec<&NewAuditEvent> =
                    events.iter().zip(&done).filter(|(_, inserted)| **inserted).map(|(e, _)| e).collect();
                for chunk in events.chunks(INSERT_CHUNK) {
                    let mut sql = "INSERT INTO outbox (event) VALUES ".to_owned();
                    for i in 0..chunk.len() {
                        if i > 0 {
                            sql.push(',');
                        }
                        sql.push_str(&format!(concat!("(", $param, "{})"), i + 1));
                    }
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for event in chunk {
                        query = query.bind(json(*event));
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(done)
            }

            async fn issued_by_request(&self, request_id: &str) -> Result<Option<IssuedRecord>, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ISSUED_COLUMNS} FROM issued WHERE request_id = $1"
                )))
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::issued_from_row).transpose()
            }

            async fn get_issued(&self, issuer_id: &str, serial: &str) -> Result<IssuedRecord, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ISSUED_COLUMNS} FROM issued WHERE issuer_id = $1 AND serial = $2"
                )))
                .bind(issuer_id)
                .bind(serial)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(row) => Self::issued_from_row(&row),
                    None => Err(StoreError::NotFound {
                        resource: format!("issuers/{issuer_id}/issuedCertificates/{serial}"),
                    }),
                }
            }

            async fn list_issued(
                &self,
                issuer_id: &str,
                revoked_only: bool,
                after_serial: Option<&str>,
                limit: i64,
            ) -> Result<Vec<IssuedRecord>, StoreError> {
                let filter = if revoked_only { " AND revoke_time IS NOT NULL" } else { "" };
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ISSUED_COLUMNS} FROM issued WHERE issuer_id = $1 AND serial > $2{filter} \
                     ORDER BY serial LIMIT $3"
                )))
                .bind(issuer_id)
                .bind(after_serial.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::issued_from_row).collect()
            }

            async fn revoke(
                &self,
                issuer_id: &str,
                serial: &str,
                revocation: Revocation,
                event: NewAuditEvent,
            ) -> Result<IssuedRecord, StoreError> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE issued SET revoke_time = $3, revocation_reason = $4, \
                     revocation_synced = (certificate_id IS NULL) \
                     WHERE issuer_id = $1 AND serial = $2 AND revoke_time IS NULL RETURNING {ISSUED_COLUMNS}"
                )))
                .bind(issuer_id)
                .bind(serial)
                .bind(revocation.time)
                .bind(i64::from(revocation.reason.code()))
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    drop(tx);
                    let existing = self.get_issued(issuer_id, serial).await?;
                    let when = existing.revocation.map(|r| (r.time, r.reason.as_str())).unwrap_or((0, ""));
                    return Err(StoreError::FailedPrecondition(format!(
                        "{} is already revoked (at {}, reason {})",
                        existing.name(),
                        certctl_domain::rfc3339(when.0),
                        when.1
                    )));
                };
                let record = Self::issued_from_row(&row)?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(record)
            }

            async fn revoked_serials(
                &self,
                issuer_id: &str,
                authority_id: &str,
            ) -> Result<Vec<RevokedSerial>, StoreError> {
                let rows = sqlx::query(
                    "SELECT serial, revoke_time, revocation_reason FROM issued \
                     WHERE issuer_id = $1 AND authority_id = $2 AND revoke_time IS NOT NULL ORDER BY serial",
                )
                .bind(issuer_id)
                .bind(authority_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        let code: i64 = row.try_get::<Option<i64>, _>("revocation_reason")?.unwrap_or(0);
                        Ok(RevokedSerial {
                            serial: row.try_get("serial")?,
                            revocation: Revocation {
                                time: row.try_get("revoke_time")?,
                                reason: RevocationReason::from_code(code).unwrap_or(RevocationReason::Unspecified),
                            },
                        })
                    })
                    .collect()
            }

            async fn unsynced(&self, limit: i64) -> Result<Vec<IssuedRecord>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ISSUED_COLUMNS} FROM issued WHERE certificate_id IS NOT NULL \
                     AND (certificate_version IS NULL OR NOT revocation_synced) ORDER BY create_time LIMIT $1"
                )))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::issued_from_row).collect()
            }

            async fn set_certificate_version(
                &self,
                issuer_id: &str,
                serial: &str,
                version: &str,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE issued SET certificate_version = $3 WHERE issuer_id = $1 AND serial = $2")
                    .bind(issuer_id)
                    .bind(serial)
                    .bind(version)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn mark_revocation_synced(&self, issuer_id: &str, serial: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE issued SET revocation_synced = TRUE WHERE issuer_id = $1 AND serial = $2")
                    .bind(issuer_id)
                    .bind(serial)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn take_key(&self, issuer_id: &str, serial: &str, event: NewAuditEvent) -> Result<String, StoreError> {
                let mut tx = self.begin().await?;
                // RETURNING yields the new (NULL) value, so read the key
                // first; the write lock taken by `begin` (SQLite) or the row
                // lock of FOR UPDATE (PostgreSQL) keeps a second export out.
                let sealed: Option<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT sealed_key FROM issued WHERE issuer_id = $1 AND serial = $2{}",
                    $row_lock
                )))
                .bind(issuer_id)
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(Some(_)) = &sealed {
                    sqlx::query("UPDATE issued SET sealed_key = NULL WHERE issuer_id = $1 AND serial = $2")
                        .bind(issuer_id)
                        .bind(serial)
                        .execute(&mut *tx)
                        .await?;
                }
                let Some(Some(sealed)) = sealed else {
                    drop(tx);
                    let existing = self.get_issued(issuer_id, serial).await?;
                    return Err(StoreError::FailedPrecondition(if existing.server_keyed {
                        format!("the private key of {} was already exported; it is handed out once", existing.name())
                    } else {
                        format!(
                            "{} was issued for a key the platform never held (the CSR came from its owner)",
                            existing.name()
                        )
                    }));
                };
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(sealed)
            }

            async fn issued_by_version(&self, version: &str) -> Result<IssuedRecord, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {ISSUED_COLUMNS} FROM issued WHERE certificate_version = $1"
                )))
                .bind(version)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(row) => Self::issued_from_row(&row),
                    None => Err(StoreError::NotFound { resource: format!("{version} issued by this platform") }),
                }
            }

            async fn get_crl(&self, issuer_id: &str, authority_id: &str) -> Result<Option<CrlRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT issuer_id, authority_id, number, der, this_update, next_update FROM crls \
                     WHERE issuer_id = $1 AND authority_id = $2",
                )
                .bind(issuer_id)
                .bind(authority_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok(CrlRecord {
                        issuer_id: row.try_get("issuer_id")?,
                        authority_id: row.try_get("authority_id")?,
                        number: row.try_get("number")?,
                        der: row.try_get("der")?,
                        this_update: row.try_get("this_update")?,
                        next_update: row.try_get("next_update")?,
                    })
                })
                .transpose()
            }

            async fn save_crl(&self, crl: &CrlRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO crls (issuer_id, authority_id, number, der, this_update, next_update) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (issuer_id, authority_id) DO UPDATE SET number = excluded.number, \
                     der = excluded.der, this_update = excluded.this_update, next_update = excluded.next_update \
                     WHERE crls.number < excluded.number",
                )
                .bind(&crl.issuer_id)
                .bind(&crl.authority_id)
                .bind(crl.number)
                .bind(&crl.der)
                .bind(crl.this_update)
                .bind(crl.next_update)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Outbox for $store {
            async fn outbox_batch(&self, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
                let rows = sqlx::query("SELECT id, event FROM outbox ORDER BY id LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(OutboxEntry {
                            id: row.try_get("id")?,
                            event: from_json("outbox.event", &row.try_get::<String, _>("event")?)?,
                        })
                    })
                    .collect()
            }

            async fn outbox_ack(&self, ids: &[i64]) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                for chunk in ids.chunks(INSERT_CHUNK) {
                    let placeholders: Vec<String> =
                        (1..=chunk.len()).map(|i| format!(concat!($param, "{}"), i)).collect();
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM outbox WHERE id IN ({})",
                        placeholders.join(",")
                    )));
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteRow,
    Some("UPDATE outbox SET id = id WHERE 0"),
    "",
    "?"
);
sql_store!(
    PostgresStore,
    sqlx::Postgres,
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    None::<&'static str>,
    " FOR UPDATE",
    "$"
);
