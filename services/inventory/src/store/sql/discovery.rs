//! The SQL of `DiscoveryStore`, expanded for both backends like `sql.rs`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::discovery::{
    DiscoveredCertificate, DiscoveryLocation, DiscoveryState, MAX_LOCATIONS_SHOWN, Sighting, discovered_id,
};
use sqlx::Row;

use super::{PostgresStore, SqliteStore, from_json, json};
use crate::store::discovery::{DiscoveryQuery, DiscoveryStore, DiscoveryTally};

const DISCOVERED_COLUMNS: &str = "id, fingerprint, subject, dns_names, issuer_dn, serial_number, not_before, \
    not_after, pem, state, certificate, first_seen_time, last_seen_time";

/// The most recently seen locations of each of `n` certificates (`$1`..`$n`).
fn locations_sql(n: usize) -> String {
    let ids: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!(
        "SELECT discovered_id, agent, path, last_seen_time FROM (\
         SELECT discovered_id, agent, path, last_seen_time, ROW_NUMBER() OVER (\
         PARTITION BY discovered_id ORDER BY last_seen_time DESC, agent, path) AS n \
         FROM discovery_locations WHERE discovered_id IN ({})) AS l \
         WHERE n <= {MAX_LOCATIONS_SHOWN} ORDER BY discovered_id, n",
        ids.join(", ")
    )
}

/// Sightings grouped by certificate, in the order each first appears.
fn by_fingerprint(sightings: &[Sighting]) -> Vec<Vec<&Sighting>> {
    let mut groups: Vec<Vec<&Sighting>> = Vec::new();
    let mut index = BTreeMap::new();
    for s in sightings {
        let i = *index.entry(s.parsed.sha256_fingerprint.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(s);
    }
    groups
}

macro_rules! discovery_store {
    ($store:ident, $db:ty, $row:ty) => {
        impl $store {
            fn discovered_from_row(row: &$row) -> Result<DiscoveredCertificate, StoreError> {
                let state: String = row.try_get("state")?;
                Ok(DiscoveredCertificate {
                    id: row.try_get("id")?,
                    fingerprint: row.try_get("fingerprint")?,
                    subject: row.try_get("subject")?,
                    dns_names: from_json("discovered_certificates.dns_names", &row.try_get::<String, _>("dns_names")?)?,
                    issuer: row.try_get("issuer_dn")?,
                    serial_number: row.try_get("serial_number")?,
                    not_before: row.try_get("not_before")?,
                    not_after: row.try_get("not_after")?,
                    locations: Vec::new(),
                    state: DiscoveryState::parse(&state).ok_or_else(|| {
                        StoreError::Internal(format!("discovered_certificates.state holds unknown state `{state}`"))
                    })?,
                    certificate: row.try_get("certificate")?,
                    first_seen_time: row.try_get("first_seen_time")?,
                    last_seen_time: row.try_get("last_seen_time")?,
                    pem: row.try_get("pem")?,
                })
            }

            /// Fills in the locations of `certificates` with one query.
            async fn with_locations<'e, E>(
                executor: E,
                mut certificates: Vec<DiscoveredCertificate>,
            ) -> Result<Vec<DiscoveredCertificate>, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                if certificates.is_empty() {
                    return Ok(certificates);
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(locations_sql(certificates.len())));
                for c in &certificates {
                    q = q.bind(c.id.clone());
                }
                let mut by_id: BTreeMap<String, Vec<DiscoveryLocation>> = BTreeMap::new();
                for row in q.fetch_all(executor).await? {
                    by_id.entry(row.try_get("discovered_id")?).or_default().push(DiscoveryLocation {
                        agent: row.try_get("agent")?,
                        path: row.try_get("path")?,
                        last_seen_time: row.try_get("last_seen_time")?,
                    });
                }
                for c in &mut certificates {
                    c.locations = by_id.remove(&c.id).unwrap_or_default();
                }
                Ok(certificates)
            }
        }

        #[async_trait]
        impl DiscoveryStore for $store {
            async fn report_discoveries(
                &self,
                agent: &str,
                sightings: &[Sighting],
                now: UnixTime,
                event: impl for<'a> Fn(&'a DiscoveredCertificate) -> NewAuditEvent + Send + Sync,
            ) -> Result<DiscoveryTally, StoreError> {
                let mut tally = DiscoveryTally::default();
                if sightings.is_empty() {
                    return Ok(tally);
                }
                let mut tx = self.begin().await?;
                for group in by_fingerprint(sightings) {
                    let first = group[0];
                    let fingerprint = &first.parsed.sha256_fingerprint;
                    let id = discovered_id(fingerprint);
                    let managed: Option<String> = sqlx::query_scalar(
                        "SELECT certificate_id FROM certificate_versions WHERE fingerprint = $1 \
                         ORDER BY certificate_id, version LIMIT 1",
                    )
                    .bind(fingerprint)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let managed = managed.map(|c| format!("certificates/{c}"));
                    let d = DiscoveredCertificate::first_seen(first, agent, managed.clone(), now);
                    // A concurrent report of the same certificate waits here,
                    // then finds it recorded. No conflict target: the id and
                    // the fingerprint are both unique (the id derives from the
                    // fingerprint), and PostgreSQL may report either first.
                    let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO discovered_certificates ({DISCOVERED_COLUMNS}) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING"
                    )))
                    .bind(&d.id)
                    .bind(&d.fingerprint)
                    .bind(&d.subject)
                    .bind(json(&d.dns_names))
                    .bind(&d.issuer)
                    .bind(&d.serial_number)
                    .bind(d.not_before)
                    .bind(d.not_after)
                    .bind(&d.pem)
                    .bind(d.state.as_str())
                    .bind(&d.certificate)
                    .bind(d.first_seen_time)
                    .bind(d.last_seen_time)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if inserted {
                        Self::outbox(&mut tx, &event(&d)).await?;
                        if d.state == DiscoveryState::New {
                            tally.new += 1;
                        } else {
                            tally.known += 1;
                        }
                    } else {
                        // Seen before: NEW becomes CLAIMED once it is managed;
                        // CLAIMED and DISMISSED stay as they are.
                        sqlx::query(
                            "UPDATE discovered_certificates SET last_seen_time = $2, \
                             certificate = CASE WHEN state = 'NEW' AND $3 <> '' THEN $3 ELSE certificate END, \
                             state = CASE WHEN state = 'NEW' AND $3 <> '' THEN 'CLAIMED' ELSE state END \
                             WHERE id = $1",
                        )
                        .bind(&id)
                        .bind(now)
                        .bind(managed.unwrap_or_default())
                        .execute(&mut *tx)
                        .await?;
                        tally.known += 1;
                    }
                    for s in group {
                        sqlx::query(
                            "INSERT INTO discovery_locations (discovered_id, agent, path, last_seen_time) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (discovered_id, agent, path) \
                             DO UPDATE SET last_seen_time = excluded.last_seen_time",
                        )
                        .bind(&id)
                        .bind(agent)
                        .bind(&s.path)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(tally)
            }

            async fn get_discovered_certificate(&self, id: &str) -> Result<DiscoveredCertificate, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {DISCOVERED_COLUMNS} FROM discovered_certificates WHERE id = $1"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound { resource: format!("discoveredCertificates/{id}") })?;
                let found = Self::with_locations(&self.pool, vec![Self::discovered_from_row(&row)?]).await?;
                Ok(found.into_iter().next().expect("one in, one out"))
            }

            async fn list_discovered_certificates(
                &self,
                query: &DiscoveryQuery,
            ) -> Result<Vec<DiscoveredCertificate>, StoreError> {
                let filter = if query.state.is_some() { " AND state = $3" } else { "" };
                let sql = format!(
                    "SELECT {DISCOVERED_COLUMNS} FROM discovered_certificates WHERE id > $1{filter} ORDER BY id LIMIT $2"
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(query.after.clone().unwrap_or_default())
                    .bind(query.limit);
                if let Some(state) = query.state {
                    q = q.bind(state.as_str());
                }
                let rows = q.fetch_all(&self.pool).await?;
                let found = rows.iter().map(Self::discovered_from_row).collect::<Result<Vec<_>, _>>()?;
                Self::with_locations(&self.pool, found).await
            }

            async fn set_discovery_state(
                &self,
                id: &str,
                state: DiscoveryState,
                certificate: &str,
                event: NewAuditEvent,
            ) -> Result<DiscoveredCertificate, StoreError> {
                let mut tx = self.begin().await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE discovered_certificates SET state = $2, certificate = $3 WHERE id = $1 \
                     RETURNING {DISCOVERED_COLUMNS}"
                )))
                .bind(id)
                .bind(state.as_str())
                .bind(certificate)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound { resource: format!("discoveredCertificates/{id}") })?;
                let updated = Self::discovered_from_row(&row)?;
                let updated = Self::with_locations(&mut *tx, vec![updated]).await?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(updated.into_iter().next().expect("one in, one out"))
            }

            async fn certificate_with_fingerprint(&self, fingerprint: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT certificate_id FROM certificate_versions WHERE fingerprint = $1 \
                     ORDER BY certificate_id, version LIMIT 1",
                )
                .bind(fingerprint)
                .fetch_optional(&self.pool)
                .await?)
            }
        }
    };
}

discovery_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
discovery_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
