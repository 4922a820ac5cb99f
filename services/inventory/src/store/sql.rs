//! The SQL behind both backends. The statements are the same text for SQLite
//! and PostgreSQL (`$n` placeholders, row-value comparisons, `RETURNING`), so
//! one macro expands them against each driver's concrete types; the only
//! dialect difference, the SQLite write lock, is a constant.

mod agents;
mod deployments;
mod discovery;

use std::collections::BTreeMap;

use async_trait::async_trait;
use certctl_common::StoreError;
use certctl_domain::UnixTime;
use certctl_domain::audit::NewAuditEvent;
use certctl_domain::inventory::{
    Certificate, CertificateState, CertificateVersion, CurrentVersion, KeyAlgorithm, ParsedCertificate, RenewalPolicy,
    Revocation,
};
use sqlx::Row;

use super::{
    CertificateOrder, CertificateQuery, Document, Outbox, OutboxEntry, PENDING_EXPIRY_KEY, ReferenceColumn,
    RevocationRecord, Store, Summary,
};

const CERT_COLUMNS: &str = "id, display_name, common_name, sans, owner, team, environment, issuer, profile, \
    renewal_policy, targets, labels, metadata, current_version, serial_number, fingerprint, not_before, \
    expiry_key, alert_lead_secs, revoked, create_time, update_time, server_keyed, key_algorithm, renew_time";

/// The basic view: what scheduling needs. The renewal-time index covers
/// these columns (migration `renew_time`), so a due listing never reads the table.
const BASIC_COLUMNS: &str = "id, issuer, revoked, current_version, not_before, expiry_key, alert_lead_secs, renew_time, \
    create_time, update_time";

/// What rescheduling needs of a certificate row.
const SCHEDULE_COLUMNS: &str = "id, issuer, revoked, current_version, not_before, expiry_key, alert_lead_secs, \
    renew_time, create_time, update_time, renewal_policy";

/// Certificates rescheduled per transaction when a policy changes.
const RESCHEDULE_BATCH: i64 = 1000;
/// Rows per rescheduling UPDATE. SQLite searches its list of `$N`
/// parameters linearly when preparing and binding, so one statement's cost
/// grows with the square of its parameters; a hundred rows keep it linear
/// in practice (see `HEARTBEAT_BATCH` in `sql/agents.rs`).
const RESCHEDULE_UPDATE_CHUNK: usize = 100;

/// What `add_version` writes; a version is immutable apart from its revocation.
const VERSION_COLUMNS: &str = "certificate_id, version, pem_chain, serial_number, fingerprint, subject, issuer_dn, \
    common_name, sans, key_algorithm, key_size, not_before, not_after, create_time";
const REVOCATION_COLUMNS: &str = "revoke_time, revocation_reason";

/// A certificate's key algorithm column: '' while the profile decides.
fn key_algorithm_column(k: Option<KeyAlgorithm>) -> &'static str {
    k.map_or("", KeyAlgorithm::as_str)
}

fn key_algorithm_from_column(text: &str) -> Option<KeyAlgorithm> {
    (!text.is_empty()).then(|| KeyAlgorithm::parse(text))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data always serialises")
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("corrupt JSON in column {column}: {e}")))
}

fn search_text(c: &Certificate) -> String {
    let mut parts = vec![c.common_name.to_lowercase()];
    parts.extend(c.subject_alt_names.iter().map(|s| s.to_lowercase()));
    parts.join(" ")
}

/// Escapes LIKE wildcards so a search for `50%` means the text `50%`.
fn like_pattern(search: &str) -> String {
    let mut out = String::from("%");
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Builds the WHERE/ORDER BY of a certificate listing. Every value is bound;
/// only fixed column names and operators are formatted into the text.
struct ListSql {
    sql: String,
    ints: Vec<(usize, i64)>,
    texts: Vec<(usize, String)>,
}

/// How a backend finds free-text matches without scanning every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SearchIndex {
    /// PostgreSQL: a pg_trgm GIN index serves `search_text LIKE '%…%'`, and
    /// the planner weighs it against the ordered scan by itself.
    TrigramLike,
    /// SQLite: the FTS5 trigram table `certificates_search`, used when it
    /// narrows the rows (see `SPARSE_MATCHES`).
    Fts5Trigram,
}

/// Below this many FTS5 matches, fetching the matches and sorting them beats
/// walking the ordered index until a page is full; above it, matches are
/// dense and the walk fills a page at once. SQLite's planner cannot see this
/// (it always drives from the match list), so the store decides.
const SPARSE_MATCHES: i64 = 5000;

/// An FTS5 phrase that matches `search` as a substring, for terms the
/// trigram tokenizer can index (three characters or more).
fn fts5_phrase(search: &str) -> Option<String> {
    (search.chars().count() >= 3).then(|| format!("\"{}\"", search.replace('"', "\"\"")))
}

/// `fts_phrase`: narrow the rows through the FTS5 table first.
fn list_sql(q: &CertificateQuery, fts_phrase: Option<String>) -> ListSql {
    let mut conds: Vec<String> = Vec::new();
    let mut ints = Vec::new();
    let mut texts = Vec::new();
    let mut n = 0;
    let mut text = |conds: &mut Vec<String>, col: &str, v: &str| {
        n += 1;
        conds.push(format!("{col} = ${n}"));
        texts.push((n, v.to_owned()));
    };
    if let Some(v) = &q.owner {
        text(&mut conds, "owner", v);
    }
    if let Some(v) = &q.team {
        text(&mut conds, "team", v);
    }
    if let Some(v) = &q.issuer {
        text(&mut conds, "issuer", v);
    }
    if let Some(v) = &q.environment {
        text(&mut conds, "environment", v);
    }
    let mut int = |v: i64| {
        n += 1;
        ints.push((n, v));
        n
    };
    if let Some(state) = q.state {
        let now = int(q.now);
        conds.push(match state {
            CertificateState::Revoked => "revoked".to_owned(),
            CertificateState::Pending => "NOT revoked AND current_version IS NULL".to_owned(),
            CertificateState::Expired => format!("NOT revoked AND expiry_key <= ${now}"),
            CertificateState::Expiring => format!("NOT revoked AND expiring_at <= ${now} AND expiry_key > ${now}"),
            CertificateState::Active => {
                format!("NOT revoked AND expiring_at > ${now} AND current_version IS NOT NULL")
            }
        });
    }
    if let Some(t) = q.expire_before {
        let p = int(t);
        conds.push(format!("expiry_key < ${p}"));
    }
    if let Some(t) = q.renew_before {
        let p = int(t);
        conds.push(format!("renew_time <= ${p}"));
    }
    let (key_col, descending) = match q.order {
        CertificateOrder::NotAfter { descending } => ("expiry_key", descending),
        CertificateOrder::Name { descending } => ("0", descending),
        CertificateOrder::CreateTime { descending } => ("create_time", descending),
        CertificateOrder::RenewTime => {
            conds.push("renew_time IS NOT NULL".to_owned());
            ("renew_time", false)
        }
    };
    if let Some(after) = &q.after {
        let cmp = if descending { "<" } else { ">" };
        if key_col == "0" {
            n += 1;
            conds.push(format!("id {cmp} ${n}"));
            texts.push((n, after.id.clone()));
        } else {
            n += 1;
            let k = n;
            ints.push((k, after.key));
            n += 1;
            conds.push(format!("({key_col}, id) {cmp} (${k}, ${n})"));
            texts.push((n, after.id.clone()));
        }
    }
    if let Some(s) = &q.search {
        if let Some(phrase) = fts_phrase {
            n += 1;
            conds
                .push(format!("rowid IN (SELECT rowid FROM certificates_search WHERE certificates_search MATCH ${n})"));
            texts.push((n, phrase));
        }
        n += 1;
        conds.push(format!("search_text LIKE ${n} ESCAPE '\\'"));
        texts.push((n, like_pattern(s)));
    }
    let where_clause = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    let dir = if descending { "DESC" } else { "ASC" };
    let order = if key_col == "0" { format!("id {dir}") } else { format!("{key_col} {dir}, id {dir}") };
    n += 1;
    ints.push((n, q.limit));
    let columns = if q.basic { BASIC_COLUMNS } else { CERT_COLUMNS };
    ListSql {
        sql: format!("SELECT {columns} FROM certificates{where_clause} ORDER BY {order} LIMIT ${n}"),
        ints,
        texts,
    }
}

/// Binds `ListSql` values in placeholder order.
enum Bind {
    Int(i64),
    Text(String),
}

fn ordered_binds(ints: Vec<(usize, i64)>, texts: Vec<(usize, String)>) -> Vec<Bind> {
    let mut all: Vec<(usize, Bind)> = ints.into_iter().map(|(i, v)| (i, Bind::Int(v))).collect();
    all.extend(texts.into_iter().map(|(i, v)| (i, Bind::Text(v))));
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, b)| b).collect()
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $pool:ty, $row:ty, $begin_write:expr, $lock_rows:expr, $search_index:expr) => {
        /// The inventory store on this backend.
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
        }

        impl $store {
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }

            fn certificate_from_row(row: &$row) -> Result<Certificate, StoreError> {
                let current_version: Option<i64> = row.try_get("current_version")?;
                let expiry_key: i64 = row.try_get("expiry_key")?;
                let current = match current_version {
                    Some(version) => Some(CurrentVersion {
                        version,
                        serial_number: row.try_get("serial_number")?,
                        sha256_fingerprint: row.try_get("fingerprint")?,
                        not_before: row.try_get::<Option<i64>, _>("not_before")?.unwrap_or_default(),
                        not_after: expiry_key,
                    }),
                    None => None,
                };
                Ok(Certificate {
                    id: row.try_get("id")?,
                    display_name: row.try_get("display_name")?,
                    common_name: row.try_get("common_name")?,
                    subject_alt_names: from_json("sans", &row.try_get::<String, _>("sans")?)?,
                    owner: row.try_get("owner")?,
                    team: row.try_get("team")?,
                    environment: row.try_get("environment")?,
                    issuer: row.try_get("issuer")?,
                    profile: row.try_get("profile")?,
                    renewal_policy: row.try_get("renewal_policy")?,
                    targets: from_json("targets", &row.try_get::<String, _>("targets")?)?,
                    labels: from_json::<BTreeMap<String, String>>("labels", &row.try_get::<String, _>("labels")?)?,
                    metadata: from_json::<BTreeMap<String, String>>("metadata", &row.try_get::<String, _>("metadata")?)?,
                    server_keyed: row.try_get("server_keyed")?,
                    key_algorithm: key_algorithm_from_column(&row.try_get::<String, _>("key_algorithm")?),
                    current,
                    revoked: row.try_get("revoked")?,
                    alert_lead_secs: row.try_get("alert_lead_secs")?,
                    renew_time: row.try_get("renew_time")?,
                    create_time: row.try_get("create_time")?,
                    update_time: row.try_get("update_time")?,
                })
            }

            /// A certificate from `BASIC_COLUMNS`: the rest stays empty.
            fn basic_certificate_from_row(row: &$row) -> Result<Certificate, StoreError> {
                let current_version: Option<i64> = row.try_get("current_version")?;
                Ok(Certificate {
                    id: row.try_get("id")?,
                    issuer: row.try_get("issuer")?,
                    revoked: row.try_get("revoked")?,
                    current: match current_version {
                        Some(version) => Some(CurrentVersion {
                            version,
                            serial_number: String::new(),
                            sha256_fingerprint: String::new(),
                            not_before: row.try_get::<Option<i64>, _>("not_before")?.unwrap_or_default(),
                            not_after: row.try_get("expiry_key")?,
                        }),
                        None => None,
                    },
                    alert_lead_secs: row.try_get("alert_lead_secs")?,
                    renew_time: row.try_get("renew_time")?,
                    create_time: row.try_get("create_time")?,
                    update_time: row.try_get("update_time")?,
                    ..Default::default()
                })
            }

            /// A certificate from `SCHEDULE_COLUMNS`.
            fn scheduled_certificate_from_row(row: &$row) -> Result<Certificate, StoreError> {
                Ok(Certificate {
                    renewal_policy: row.try_get("renewal_policy")?,
                    ..Self::basic_certificate_from_row(row)?
                })
            }

            fn version_from_row(row: &$row) -> Result<CertificateVersion, StoreError> {
                Ok(CertificateVersion {
                    certificate_id: row.try_get("certificate_id")?,
                    version: row.try_get("version")?,
                    pem_chain: row.try_get("pem_chain")?,
                    parsed: ParsedCertificate {
                        serial_number: row.try_get("serial_number")?,
                        sha256_fingerprint: row.try_get("fingerprint")?,
                        subject: row.try_get("subject")?,
                        issuer: row.try_get("issuer_dn")?,
                        common_name: row.try_get("common_name")?,
                        subject_alt_names: from_json("sans", &row.try_get::<String, _>("sans")?)?,
                        key_algorithm: KeyAlgorithm::parse(&row.try_get::<String, _>("key_algorithm")?),
                        key_size: row.try_get::<i64, _>("key_size")? as i32,
                        not_before: row.try_get("not_before")?,
                        not_after: row.try_get("not_after")?,
                    },
                    create_time: row.try_get("create_time")?,
                    revocation: match row.try_get::<Option<i64>, _>("revoke_time")? {
                        Some(revoke_time) => Some(Revocation {
                            revoke_time,
                            reason: row.try_get::<Option<String>, _>("revocation_reason")?.unwrap_or_default(),
                        }),
                        None => None,
                    },
                })
            }

            async fn begin(&self) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                let mut tx = self.pool.begin().await?;
                // SQLite: take the write lock up front so two writers queue on
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

            /// A renewal policy as this transaction sees it; the built-in
            /// default for none (or one deleted since).
            async fn policy_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                name: &str,
            ) -> Result<RenewalPolicy, StoreError> {
                let Some(id) = name.strip_prefix("renewalPolicies/") else { return Ok(RenewalPolicy::default()) };
                let body: Option<String> = sqlx::query_scalar("SELECT body FROM renewal_policies WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?;
                body.map_or_else(|| Ok(RenewalPolicy::default()), |b| from_json("renewal_policies", &b))
            }

            /// Stores the alert lead and renewal time of certificate `id` as
            /// its row now stands, under its policy as this transaction reads
            /// it, and returns the certificate. The row is already written
            /// (locked) here; a policy update committing later re-locks the
            /// row and recomputes it, so neither can leave a stale time.
            async fn reschedule_one(
                tx: &mut sqlx::Transaction<'static, $db>,
                id: &str,
            ) -> Result<Certificate, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .ok_or_else(|| StoreError::NotFound { resource: format!("certificates/{id}") })?;
                let mut certificate = Self::certificate_from_row(&row)?;
                let policy = Self::policy_in(tx, &certificate.renewal_policy).await?;
                certificate.alert_lead_secs = policy.alert_lead_secs();
                certificate.renew_time = certificate.next_issue_time(&policy);
                sqlx::query(
                    "UPDATE certificates SET alert_lead_secs = $2, \
                     expiring_at = CASE WHEN current_version IS NULL THEN NULL ELSE expiry_key - $2 END, \
                     renew_time = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(certificate.alert_lead_secs)
                .bind(certificate.renew_time)
                .execute(&mut **tx)
                .await?;
                Ok(certificate)
            }

            /// Recomputes the alert lead and renewal time of the next
            /// `RESCHEDULE_BATCH` certificates after id `after` on renewal
            /// policy `only` (on any when `None`), each under
            /// `policy_of(its renewal_policy)`. Returns the last id while
            /// more may follow.
            async fn reschedule_batch(
                tx: &mut sqlx::Transaction<'static, $db>,
                only: Option<&str>,
                policy_of: &(dyn Fn(&str) -> RenewalPolicy + Sync),
                after: &str,
            ) -> Result<Option<String>, StoreError> {
                let filter = if only.is_some() { " AND renewal_policy = $3" } else { "" };
                let select = format!(
                    "SELECT {SCHEDULE_COLUMNS} FROM certificates WHERE id > $1{filter} ORDER BY id LIMIT $2{}",
                    $lock_rows
                );
                {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(select)).bind(after).bind(RESCHEDULE_BATCH);
                    if let Some(policy) = only {
                        q = q.bind(policy);
                    }
                    let rows = q.fetch_all(&mut **tx).await?;
                    let Some(last) = rows.last() else { return Ok(None) };
                    let last_id: String = last.try_get("id")?;
                    let mut values = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let certificate = Self::scheduled_certificate_from_row(row)?;
                        let policy = policy_of(&certificate.renewal_policy);
                        let renew_time = certificate.next_issue_time(&policy);
                        values.push((certificate.id, policy.alert_lead_secs(), renew_time));
                    }
                    for chunk in values.chunks(RESCHEDULE_UPDATE_CHUNK) {
                        let tuples: Vec<String> = (0..chunk.len())
                            .map(|i| {
                                let n = 3 * i;
                                format!(
                                    "(CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                                    n + 1,
                                    n + 2,
                                    n + 3
                                )
                            })
                            .collect();
                        // VALUES columns are column1.. in both dialects.
                        let update = format!(
                            "UPDATE certificates SET alert_lead_secs = v.column2, \
                             expiring_at = CASE WHEN current_version IS NULL THEN NULL ELSE expiry_key - v.column2 END, \
                             renew_time = v.column3 FROM (VALUES {}) AS v WHERE certificates.id = v.column1",
                            tuples.join(", ")
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(update));
                        for (id, lead, renew_time) in chunk {
                            q = q.bind(id.as_str()).bind(*lead).bind(*renew_time);
                        }
                        q.execute(&mut **tx).await?;
                    }
                    Ok(((rows.len() as i64) == RESCHEDULE_BATCH).then_some(last_id))
                }
            }

            fn bind_certificate<'q>(
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
                c: &Certificate,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                query
                    .bind(c.id.clone())
                    .bind(c.display_name.clone())
                    .bind(c.common_name.clone())
                    .bind(json(&c.subject_alt_names))
                    .bind(c.owner.clone())
                    .bind(c.team.clone())
                    .bind(c.environment.clone())
                    .bind(c.issuer.clone())
                    .bind(c.profile.clone())
                    .bind(c.renewal_policy.clone())
                    .bind(json(&c.targets))
                    .bind(json(&c.labels))
                    .bind(json(&c.metadata))
                    .bind(search_text(c))
                    .bind(c.alert_lead_secs)
                    .bind(c.server_keyed)
                    .bind(key_algorithm_column(c.key_algorithm))
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn create_certificate(
                &self,
                certificate: &Certificate,
                request_id: Option<&str>,
                event: NewAuditEvent,
            ) -> Result<Certificate, StoreError> {
                let mut tx = self.begin().await?;
                if let Some(request_id) = request_id {
                    let seen: Option<String> = sqlx::query_scalar("SELECT resource FROM request_ids WHERE request_id = $1")
                        .bind(request_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(resource) = seen {
                        tx.rollback().await?;
                        let id = resource.trim_start_matches("certificates/");
                        return self.get_certificate(id).await;
                    }
                    // A retry racing the first attempt gets past the SELECT; its
                    // insert then waits for the first to commit and claims nothing.
                    let claimed = sqlx::query(
                        "INSERT INTO request_ids (request_id, resource, create_time) VALUES ($1, $2, $3) \
                         ON CONFLICT (request_id) DO NOTHING",
                    )
                    .bind(request_id)
                    .bind(certificate.name())
                    .bind(certificate.create_time)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1;
                    if !claimed {
                        tx.rollback().await?;
                        let resource: String =
                            sqlx::query_scalar("SELECT resource FROM request_ids WHERE request_id = $1")
                                .bind(request_id)
                                .fetch_one(&self.pool)
                                .await?;
                        return self.get_certificate(resource.trim_start_matches("certificates/")).await;
                    }
                }
                let insert = sqlx::query(
                    "INSERT INTO certificates (id, display_name, common_name, sans, owner, team, environment, issuer, \
                     profile, renewal_policy, targets, labels, metadata, search_text, alert_lead_secs, server_keyed, \
                     key_algorithm, expiring_at, expiry_key, create_time, update_time) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
                );
                let expiry_key = certificate.current.as_ref().map_or(PENDING_EXPIRY_KEY, |v| v.not_after);
                Self::bind_certificate(insert, certificate)
                    .bind(certificate.expiring_at())
                    .bind(expiry_key)
                    .bind(certificate.create_time)
                    .bind(certificate.update_time)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, || certificate.name()))?;
                let created = Self::reschedule_one(&mut tx, &certificate.id).await?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn get_certificate(&self, id: &str) -> Result<Certificate, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::NotFound { resource: format!("certificates/{id}") })?;
                Self::certificate_from_row(&row)
            }

            async fn update_certificate(
                &self,
                certificate: &Certificate,
                event: NewAuditEvent,
            ) -> Result<Certificate, StoreError> {
                let mut tx = self.begin().await?;
                let update = sqlx::query(
                    "UPDATE certificates SET display_name = $2, common_name = $3, sans = $4, owner = $5, team = $6, \
                     environment = $7, issuer = $8, profile = $9, renewal_policy = $10, targets = $11, labels = $12, \
                     metadata = $13, search_text = $14, alert_lead_secs = $15, server_keyed = $16, key_algorithm = $17, \
                     expiring_at = CASE WHEN current_version IS NULL THEN NULL ELSE expiry_key - $15 END, \
                     update_time = $18 WHERE id = $1",
                );
                let done = Self::bind_certificate(update, certificate)
                    .bind(certificate.update_time)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: certificate.name() });
                }
                let updated = Self::reschedule_one(&mut tx, &certificate.id).await?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(updated)
            }

            async fn delete_certificate(&self, id: &str, event: NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                sqlx::query("DELETE FROM deployments WHERE certificate_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM certificate_versions WHERE certificate_id = $1").bind(id).execute(&mut *tx).await?;
                let done = sqlx::query("DELETE FROM certificates WHERE id = $1").bind(id).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: format!("certificates/{id}") });
                }
                // What was claimed by it is unmanaged again.
                sqlx::query("UPDATE discovered_certificates SET state = 'NEW', certificate = '' WHERE certificate = $1")
                    .bind(format!("certificates/{id}"))
                    .execute(&mut *tx)
                    .await?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_certificates(&self, query: &CertificateQuery) -> Result<Vec<Certificate>, StoreError> {
                let mut fts_phrase = None;
                if $search_index == SearchIndex::Fts5Trigram
                    && let Some(phrase) = query.search.as_deref().and_then(fts5_phrase)
                {
                    let matches: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM (SELECT 1 FROM certificates_search WHERE certificates_search MATCH $1 LIMIT $2)",
                    )
                    .bind(&phrase)
                    .bind(SPARSE_MATCHES)
                    .fetch_one(&self.pool)
                    .await?;
                    fts_phrase = (matches < SPARSE_MATCHES).then_some(phrase);
                }
                let ListSql { sql, ints, texts } = list_sql(query, fts_phrase);
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for bind in ordered_binds(ints, texts) {
                    q = match bind {
                        Bind::Int(v) => q.bind(v),
                        Bind::Text(v) => q.bind(v),
                    };
                }
                let rows = q.fetch_all(&self.pool).await?;
                let decode = if query.basic { Self::basic_certificate_from_row } else { Self::certificate_from_row };
                rows.iter().map(decode).collect()
            }

            async fn summarize(&self, now: UnixTime) -> Result<Summary, StoreError> {
                let row = sqlx::query(
                    "SELECT COUNT(*) AS total, \
                     COALESCE(SUM(CASE WHEN revoked THEN 1 ELSE 0 END), 0) AS revoked, \
                     COALESCE(SUM(CASE WHEN NOT revoked AND current_version IS NULL THEN 1 ELSE 0 END), 0) AS pending, \
                     COALESCE(SUM(CASE WHEN NOT revoked AND expiry_key <= $1 THEN 1 ELSE 0 END), 0) AS expired, \
                     COALESCE(SUM(CASE WHEN NOT revoked AND expiring_at <= $1 AND expiry_key > $1 THEN 1 ELSE 0 END), 0) AS expiring, \
                     COALESCE(SUM(CASE WHEN NOT revoked AND current_version IS NOT NULL AND expiring_at > $1 THEN 1 ELSE 0 END), 0) AS active, \
                     COALESCE(SUM(CASE WHEN NOT revoked AND expiry_key > $1 AND expiry_key <= $2 THEN 1 ELSE 0 END), 0) AS within7, \
                     COALESCE(SUM(CASE WHEN NOT revoked AND expiry_key > $1 AND expiry_key <= $3 THEN 1 ELSE 0 END), 0) AS within30 \
                     FROM certificates",
                )
                .bind(now)
                .bind(now + 7 * 86_400)
                .bind(now + 30 * 86_400)
                .fetch_one(&self.pool)
                .await?;
                Ok(Summary {
                    total: row.try_get("total")?,
                    pending: row.try_get("pending")?,
                    active: row.try_get("active")?,
                    expiring: row.try_get("expiring")?,
                    expired: row.try_get("expired")?,
                    revoked: row.try_get("revoked")?,
                    expiring_within_7_days: row.try_get("within7")?,
                    expiring_within_30_days: row.try_get("within30")?,
                })
            }

            async fn certificate_references(&self, column: ReferenceColumn, name: &str) -> Result<bool, StoreError> {
                let sql = format!("SELECT 1 FROM certificates WHERE {} LIMIT 1", column.condition());
                let found = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&self.pool).await?;
                Ok(found.is_some())
            }

            async fn update_renewal_policy(&self, policy: &RenewalPolicy, event: NewAuditEvent) -> Result<(), StoreError> {
                let mut tx = self.begin().await?;
                let done = sqlx::query("UPDATE renewal_policies SET body = $2, update_time = $3 WHERE id = $1")
                    .bind(&policy.id)
                    .bind(json(policy))
                    .bind(policy.update_time)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: document_name::<RenewalPolicy>(&policy.id) });
                }
                let name = document_name::<RenewalPolicy>(&policy.id);
                let mut after = String::new();
                while let Some(last) = Self::reschedule_batch(&mut tx, Some(&name), &|_| policy.clone(), &after).await? {
                    after = last;
                }
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn run_data_migrations(&self) -> Result<Vec<String>, StoreError> {
                let pending: Vec<String> = sqlx::query_scalar("SELECT name FROM data_migrations ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
                let mut done = Vec::new();
                for name in pending {
                    match name.as_str() {
                        "renew_time" => {
                            // One transaction per batch, so writers are not held
                            // up for the whole table; a crash part-way starts
                            // over, and every batch is correct on its own.
                            let mut after = String::new();
                            loop {
                                let mut tx = self.begin().await?;
                                // Read (on PostgreSQL: locked, before the rows)
                                // in each batch's transaction, so a policy
                                // update waits for the batch or the batch sees it.
                                let select = format!("SELECT body FROM renewal_policies{}", $lock_rows);
                                let bodies: Vec<String> =
                                    sqlx::query_scalar(sqlx::AssertSqlSafe(select)).fetch_all(&mut *tx).await?;
                                let mut policies = std::collections::HashMap::new();
                                for body in bodies {
                                    let policy: RenewalPolicy = from_json("renewal_policies", &body)?;
                                    policies.insert(document_name::<RenewalPolicy>(&policy.id), policy);
                                }
                                let policy_of = |name: &str| policies.get(name).cloned().unwrap_or_default();
                                let next = Self::reschedule_batch(&mut tx, None, &policy_of, &after).await?;
                                tx.commit().await?;
                                match next {
                                    Some(last) => after = last,
                                    None => break,
                                }
                            }
                        }
                        other => {
                            return Err(StoreError::Internal(format!(
                                "data migration `{other}` is unknown to this version of certctl; \
                                 it was written by a newer one"
                            )));
                        }
                    }
                    sqlx::query("DELETE FROM data_migrations WHERE name = $1").bind(&name).execute(&self.pool).await?;
                    done.push(name);
                }
                Ok(done)
            }

            async fn add_version(
                &self,
                certificate_id: &str,
                pem_chain: &str,
                parsed: &ParsedCertificate,
                now: UnixTime,
                event: impl FnOnce(i64) -> NewAuditEvent + Send,
            ) -> Result<CertificateVersion, StoreError> {
                let mut tx = self.begin().await?;
                // Writing the certificate row first locks it, so concurrent
                // versions of one certificate are numbered one after another,
                // and the current fingerprint read here is the one this
                // version follows: two deliveries of one signed chain (a
                // retried job and the issuer's sync after a restart) record
                // it once.
                let current: Option<(i64, String)> = sqlx::query_as(
                    "UPDATE certificates SET update_time = $2 WHERE id = $1 \
                     RETURNING COALESCE(current_version, 0) + 1, fingerprint",
                )
                .bind(certificate_id)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((version, current_fingerprint)) = current else {
                    return Err(StoreError::NotFound { resource: format!("certificates/{certificate_id}") });
                };
                if version > 1 && current_fingerprint.eq_ignore_ascii_case(&parsed.sha256_fingerprint) {
                    return Err(StoreError::AlreadyExists {
                        resource: format!(
                            "a version of certificates/{certificate_id} with fingerprint {}",
                            parsed.sha256_fingerprint
                        ),
                    });
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO certificate_versions ({VERSION_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                )))
                .bind(certificate_id)
                .bind(version)
                .bind(pem_chain)
                .bind(&parsed.serial_number)
                .bind(&parsed.sha256_fingerprint)
                .bind(&parsed.subject)
                .bind(&parsed.issuer)
                .bind(&parsed.common_name)
                .bind(json(&parsed.subject_alt_names))
                .bind(parsed.key_algorithm.as_str())
                .bind(i64::from(parsed.key_size))
                .bind(parsed.not_before)
                .bind(parsed.not_after)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE certificates SET current_version = $2, serial_number = $3, fingerprint = $4, \
                     not_before = $5, expiry_key = $6, expiring_at = $6 - alert_lead_secs, revoked = FALSE \
                     WHERE id = $1",
                )
                .bind(certificate_id)
                .bind(version)
                .bind(&parsed.serial_number)
                .bind(&parsed.sha256_fingerprint)
                .bind(parsed.not_before)
                .bind(parsed.not_after)
                .execute(&mut *tx)
                .await?;
                Self::reschedule_one(&mut tx, certificate_id).await?;
                Self::outbox(&mut tx, &event(version)).await?;
                tx.commit().await?;
                Ok(CertificateVersion {
                    certificate_id: certificate_id.to_owned(),
                    version,
                    pem_chain: pem_chain.to_owned(),
                    parsed: parsed.clone(),
                    create_time: now,
                    revocation: None,
                })
            }

            async fn get_version(&self, certificate_id: &str, version: i64) -> Result<CertificateVersion, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {VERSION_COLUMNS}, {REVOCATION_COLUMNS} FROM certificate_versions \
                     WHERE certificate_id = $1 AND version = $2"
                )))
                .bind(certificate_id)
                .bind(version)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound {
                    resource: certctl_domain::name::version_name(certificate_id, version),
                })?;
                Self::version_from_row(&row)
            }

            async fn record_revocation(
                &self,
                certificate_id: &str,
                version: i64,
                revocation: &Revocation,
                now: UnixTime,
                event: NewAuditEvent,
            ) -> Result<RevocationRecord, StoreError> {
                let not_found = || StoreError::NotFound {
                    resource: certctl_domain::name::version_name(certificate_id, version),
                };
                let mut tx = self.begin().await?;
                // Lock the certificate row first, as add_version does, so a
                // concurrent new version is either before or after this.
                let current: Option<Option<i64>> = sqlx::query_scalar(
                    "UPDATE certificates SET update_time = update_time WHERE id = $1 RETURNING current_version",
                )
                .bind(certificate_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(current) = current else {
                    return Err(not_found());
                };
                let marked = sqlx::query(
                    "UPDATE certificate_versions SET revoke_time = $3, revocation_reason = $4 \
                     WHERE certificate_id = $1 AND version = $2 AND revoke_time IS NULL",
                )
                .bind(certificate_id)
                .bind(version)
                .bind(revocation.revoke_time)
                .bind(&revocation.reason)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !marked {
                    let earlier = sqlx::query(
                        "SELECT revoke_time, revocation_reason FROM certificate_versions \
                         WHERE certificate_id = $1 AND version = $2",
                    )
                    .bind(certificate_id)
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(not_found)?;
                    let existing = Revocation {
                        revoke_time: earlier.try_get::<Option<i64>, _>("revoke_time")?.unwrap_or_default(),
                        reason: earlier.try_get::<Option<String>, _>("revocation_reason")?.unwrap_or_default(),
                    };
                    tx.rollback().await?;
                    return Ok(RevocationRecord::AlreadyRevoked {
                        existing,
                        certificate: self.get_certificate(certificate_id).await?,
                    });
                }
                if current == Some(version) {
                    // A revoked certificate is not renewed (Certificate::next_issue_time).
                    sqlx::query("UPDATE certificates SET revoked = TRUE, renew_time = NULL, update_time = $2 WHERE id = $1")
                        .bind(certificate_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                Self::outbox(&mut tx, &event).await?;
                let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CERT_COLUMNS} FROM certificates WHERE id = $1")))
                    .bind(certificate_id)
                    .fetch_one(&mut *tx)
                    .await?;
                let certificate = Self::certificate_from_row(&row)?;
                tx.commit().await?;
                Ok(RevocationRecord::Recorded(certificate))
            }

            async fn list_versions(
                &self,
                certificate_id: &str,
                before_version: Option<i64>,
                limit: i64,
            ) -> Result<Vec<CertificateVersion>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {VERSION_COLUMNS}, {REVOCATION_COLUMNS} FROM certificate_versions \
                     WHERE certificate_id = $1 AND version < $2 \
                     ORDER BY version DESC LIMIT $3"
                )))
                .bind(certificate_id)
                .bind(before_version.unwrap_or(i64::MAX))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::version_from_row).collect()
            }

            async fn create_document<D: Document>(&self, doc: &D, event: NewAuditEvent) -> Result<(), StoreError> {
                let table = D::TABLE.as_str();
                let mut tx = self.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO {table} (id, body, create_time, update_time) VALUES ($1, $2, $3, $4)"
                )))
                .bind(doc.id())
                .bind(json(doc))
                .bind(doc.create_time())
                .bind(doc.update_time())
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, || document_name::<D>(doc.id())))?;
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_document<D: Document>(&self, id: &str) -> Result<D, StoreError> {
                let table = D::TABLE.as_str();
                let body: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT body FROM {table} WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                let body = body.ok_or_else(|| StoreError::NotFound { resource: document_name::<D>(id) })?;
                from_json(table, &body)
            }

            async fn update_document<D: Document>(&self, doc: &D, event: NewAuditEvent) -> Result<(), StoreError> {
                let table = D::TABLE.as_str();
                let mut tx = self.begin().await?;
                let done = sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET body = $2, update_time = $3 WHERE id = $1")))
                    .bind(doc.id())
                    .bind(json(doc))
                    .bind(doc.update_time())
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: document_name::<D>(doc.id()) });
                }
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn delete_document<D: Document>(&self, id: &str, event: NewAuditEvent) -> Result<(), StoreError> {
                let table = D::TABLE.as_str();
                let mut tx = self.begin().await?;
                if D::TABLE == super::Table::Targets {
                    // A target's deployments go with it.
                    sqlx::query("DELETE FROM deployments WHERE target_id = $1").bind(id).execute(&mut *tx).await?;
                }
                let done = sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE id = $1")))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound { resource: document_name::<D>(id) });
                }
                Self::outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_documents<D: Document>(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<D>, StoreError> {
                let table = D::TABLE.as_str();
                let bodies: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT body FROM {table} WHERE id > $1 ORDER BY id LIMIT $2"
                )))
                .bind(after_id.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                bodies.iter().map(|b| from_json(table, b)).collect()
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
                for id in ids {
                    sqlx::query("DELETE FROM outbox WHERE id = $1").bind(*id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

fn document_name<D: Document>(id: &str) -> String {
    let collection = match D::TABLE {
        super::Table::Owners => "owners",
        super::Table::Teams => "teams",
        super::Table::Targets => "targets",
        super::Table::Agents => "agents",
        super::Table::RenewalPolicies => "renewalPolicies",
        super::Table::Policies => "policies",
    };
    format!("{collection}/{id}")
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteRow,
    Some("UPDATE outbox SET id = id WHERE 0"),
    "", // the write lock taken at BEGIN already excludes other writers
    SearchIndex::Fts5Trigram
);
sql_store!(
    PostgresStore,
    sqlx::Postgres,
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    None::<&'static str>,
    " FOR UPDATE",
    SearchIndex::TrigramLike
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
