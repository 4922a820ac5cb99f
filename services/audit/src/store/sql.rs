//! The SQL behind both backends. The statements are the same text for SQLite
//! and PostgreSQL (`$n` placeholders, `RETURNING`, `ON CONFLICT`), so one
//! macro expands them against each driver's concrete types.
//!
//! Appenders are serialised by writing the single `chain_head` row first: on
//! PostgreSQL that takes the row lock, which a second appender waits on (and
//! then sees the new head, READ COMMITTED re-reads the locked row); on SQLite
//! a transaction whose first statement is a write takes the database's write
//! lock straight away, the `BEGIN IMMEDIATE` behaviour, instead of upgrading
//! a read snapshot later and failing with SQLITE_BUSY.

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::audit::{AuditEvent, NewAuditEvent};
use sqlx::Row;

use super::{ChainHead, EventQuery, ResourceFilter, Store};

const EVENT_COLUMNS: &str =
    "sequence, actor, action, resource, event_time, request_id, details, source, source_id, previous_hash, hash";

/// Takes the chain's write lock and reads its head in one statement.
const LOCK_HEAD: &str = "UPDATE chain_head SET sequence = sequence WHERE id = 1 RETURNING sequence, hash";

fn details_text(details: &serde_json::Value) -> String {
    serde_json::to_string(details).expect("JSON values always serialise")
}

/// Reads the stored details. Text that is not JSON can only come from someone
/// editing the database by hand; it is shown as a string rather than failing
/// the whole read, and VerifyChain reports the event because its hash no
/// longer matches.
fn details_value(sequence: i64, text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| {
        tracing::warn!(sequence, error = %e, "audit event details are not valid JSON");
        serde_json::Value::String(text.to_owned())
    })
}

enum Bind {
    Int(i64),
    Text(String),
}

/// Builds a listing's SQL. Every value is bound; only fixed column names and
/// operators are formatted into the text.
fn list_sql(q: &EventQuery) -> (String, Vec<Bind>) {
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<Bind> = Vec::new();
    // Returns the placeholder number of the value just bound.
    fn push(binds: &mut Vec<Bind>, b: Bind) -> usize {
        binds.push(b);
        binds.len()
    }
    if let Some(t) = q.start_time_micros {
        let n = push(&mut binds, Bind::Int(t));
        conds.push(format!("event_time >= ${n}"));
    }
    if let Some(t) = q.end_time_micros {
        let n = push(&mut binds, Bind::Int(t));
        conds.push(format!("event_time < ${n}"));
    }
    if let Some(actor) = &q.actor {
        let n = push(&mut binds, Bind::Text(actor.clone()));
        conds.push(format!("actor = ${n}"));
    }
    if let Some(action) = &q.action {
        let n = push(&mut binds, Bind::Text(action.clone()));
        conds.push(format!("action = ${n}"));
    }
    match &q.resource {
        Some(ResourceFilter::Exact(resource)) => {
            let n = push(&mut binds, Bind::Text(resource.clone()));
            conds.push(format!("resource = ${n}"));
        }
        Some(ResourceFilter::Prefix(prefix)) => {
            // A byte-wise range instead of LIKE: it uses the index and needs
            // no wildcard escaping. The prefix ends in '/', and '0' is the
            // next code point, so [prefix, upper) is exactly the strings that
            // start with the prefix.
            let upper = format!("{}0", prefix.strip_suffix('/').unwrap_or(prefix));
            let lo = push(&mut binds, Bind::Text(prefix.clone()));
            let hi = push(&mut binds, Bind::Text(upper));
            conds.push(format!("resource >= ${lo} AND resource < ${hi}"));
        }
        None => {}
    }
    if let Some(after) = q.after_sequence {
        let n = push(&mut binds, Bind::Int(after));
        conds.push(format!("sequence {} ${n}", if q.descending { "<" } else { ">" }));
    }
    if let Some(through) = q.through_sequence {
        let n = push(&mut binds, Bind::Int(through));
        conds.push(format!("sequence <= ${n}"));
    }
    let where_clause = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let dir = if q.descending { "DESC" } else { "ASC" };
    let n = push(&mut binds, Bind::Int(q.limit));
    (format!("SELECT {EVENT_COLUMNS} FROM audit_events{where_clause} ORDER BY sequence {dir} LIMIT ${n}"), binds)
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $pool:ty, $row:ty) => {
        /// The audit store on this backend.
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
        }

        impl $store {
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }

            fn event_from_row(row: &$row) -> Result<AuditEvent, StoreError> {
                let sequence: i64 = row.try_get("sequence")?;
                Ok(AuditEvent {
                    sequence,
                    event: NewAuditEvent {
                        actor: row.try_get("actor")?,
                        action: row.try_get("action")?,
                        resource: row.try_get("resource")?,
                        event_time_micros: row.try_get("event_time")?,
                        request_id: row.try_get("request_id")?,
                        details: details_value(sequence, &row.try_get::<String, _>("details")?),
                        source: row.try_get("source")?,
                        source_id: row.try_get("source_id")?,
                    },
                    previous_hash: row.try_get("previous_hash")?,
                    hash: row.try_get("hash")?,
                })
            }

            /// A producer that reuses an id for a different event (say, after
            /// restoring its database from a backup) would otherwise lose that
            /// event silently. It is still acknowledged, because refusing it
            /// would wedge the producer's relay forever, but it is logged.
            async fn warn_if_different(
                tx: &mut sqlx::Transaction<'static, $db>,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM audit_events WHERE source = $1 AND source_id = $2"
                )))
                .bind(&event.source)
                .bind(&event.source_id)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(row) = row {
                    let existing = Self::event_from_row(&row)?;
                    if existing.event != *event {
                        tracing::warn!(
                            source = %event.source,
                            source_id = %event.source_id,
                            sequence = existing.sequence,
                            "a different audit event with an already recorded (source, source_id) was dropped"
                        );
                    }
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn append(&self, events: &[NewAuditEvent]) -> Result<u64, StoreError> {
                if events.is_empty() {
                    return Ok(0);
                }
                let mut tx = self.pool.begin().await?;
                let (mut sequence, mut hash): (i64, String) = sqlx::query_as(LOCK_HEAD).fetch_one(&mut *tx).await?;
                let mut appended = 0;
                for event in events {
                    let linked = AuditEvent::link(sequence + 1, &hash, event.clone());
                    // Under the chain lock nobody else can insert, so the
                    // conflict clause only meets events already in the chain
                    // (or earlier in this batch): a duplicate, not a race.
                    let inserted = sqlx::query(
                        "INSERT INTO audit_events (sequence, actor, action, resource, event_time, request_id, \
                         details, source, source_id, previous_hash, hash) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                         ON CONFLICT (source, source_id) DO NOTHING RETURNING sequence",
                    )
                    .bind(linked.sequence)
                    .bind(&event.actor)
                    .bind(&event.action)
                    .bind(&event.resource)
                    .bind(event.event_time_micros)
                    .bind(&event.request_id)
                    .bind(details_text(&event.details))
                    .bind(&event.source)
                    .bind(&event.source_id)
                    .bind(&linked.previous_hash)
                    .bind(&linked.hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if inserted.is_some() {
                        sequence = linked.sequence;
                        hash = linked.hash;
                        appended += 1;
                    } else {
                        Self::warn_if_different(&mut tx, event).await?;
                    }
                }
                if appended > 0 {
                    sqlx::query("UPDATE chain_head SET sequence = $1, hash = $2 WHERE id = 1")
                        .bind(sequence)
                        .bind(&hash)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(appended)
            }

            async fn get(&self, sequence: i64) -> Result<AuditEvent, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {EVENT_COLUMNS} FROM audit_events WHERE sequence = $1"
                )))
                .bind(sequence)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound { resource: certctl_domain::audit::event_name(sequence) })?;
                Self::event_from_row(&row)
            }

            async fn list(&self, query: &EventQuery) -> Result<Vec<AuditEvent>, StoreError> {
                let (sql, binds) = list_sql(query);
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for bind in binds {
                    q = match bind {
                        Bind::Int(v) => q.bind(v),
                        Bind::Text(v) => q.bind(v),
                    };
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter().map(Self::event_from_row).collect()
            }

            async fn head(&self) -> Result<ChainHead, StoreError> {
                let head: Option<(i64, String)> =
                    sqlx::query_as("SELECT sequence, hash FROM chain_head WHERE id = 1").fetch_optional(&self.pool).await?;
                let (sequence, hash) =
                    head.ok_or_else(|| StoreError::Internal("the audit chain_head row is missing".into()))?;
                Ok(ChainHead { sequence, hash })
            }
        }
    };
}

sql_store!(SqliteStore, sqlx::Sqlite, sqlx::SqlitePool, sqlx::sqlite::SqliteRow);
sql_store!(PostgresStore, sqlx::Postgres, sqlx::PgPool, sqlx::postgres::PgRow);

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(binds: &[Bind]) -> Vec<String> {
        binds
            .iter()
            .map(|b| match b {
                Bind::Int(v) => v.to_string(),
                Bind::Text(v) => v.clone(),
            })
            .collect()
    }

    #[test]
    fn placeholders_follow_the_binds() {
        let q = EventQuery {
            start_time_micros: Some(10),
            end_time_micros: Some(20),
            actor: Some("users/alice".into()),
            action: Some("inventory.CreateCertificate".into()),
            resource: Some(ResourceFilter::Prefix("certificates/web/".into())),
            descending: true,
            after_sequence: Some(99),
            through_sequence: Some(120),
            limit: 51,
        };
        let (sql, binds) = list_sql(&q);
        assert!(sql.ends_with(
            "WHERE event_time >= $1 AND event_time < $2 AND actor = $3 AND action = $4 \
             AND resource >= $5 AND resource < $6 AND sequence < $7 AND sequence <= $8 ORDER BY sequence DESC LIMIT $9"
        ));
        assert_eq!(
            texts(&binds),
            [
                "10",
                "20",
                "users/alice",
                "inventory.CreateCertificate",
                "certificates/web/",
                "certificates/web0",
                "99",
                "120",
                "51"
            ]
        );
    }

    #[test]
    fn an_unfiltered_chain_read_is_ascending_after_the_cursor() {
        let (sql, binds) = list_sql(&EventQuery::chain(5, 1000));
        assert!(sql.ends_with(" WHERE sequence > $1 ORDER BY sequence ASC LIMIT $2"), "{sql}");
        assert_eq!(texts(&binds), ["5", "1000"]);
    }

    #[test]
    fn hand_edited_details_stay_visible() {
        assert_eq!(details_value(1, r#"{"a":1}"#), serde_json::json!({"a": 1}));
        assert_eq!(details_value(1, "{oops"), serde_json::json!("{oops"));
    }
}
