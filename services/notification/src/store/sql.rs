//! The SQL both backends share, as one macro expanded against each
//! driver's types. Every statement is the same text on SQLite and
//! PostgreSQL: `$n` placeholders, `ON CONFLICT`, row-value comparisons for
//! keyset pages and `COUNT(*) FILTER` for inbox groups.

/// Columns of `notifications`, in `notification_from_row` order.
pub(super) const NOTIFICATION_COLUMNS: &str = "n.id, n.dedup_key, n.alert_key, n.event_type, n.severity, n.certificate, \
     n.certificate_version, n.owner, n.team, n.environment, n.title, n.body, n.recipients, n.details, n.create_time, \
     n.resolve_time";
pub(super) const DELIVERY_COLUMNS: &str = "d.id, d.notification_id, d.channel_id, d.action, d.state, d.attempts, \
     d.max_attempts, d.next_attempt_at, d.last_error, d.response_status, d.response_excerpt, d.create_time, \
     d.update_time";
pub(super) const CHANNEL_COLUMNS: &str =
    "c.id, c.display_name, c.kind, c.config, c.sealed_secret, c.disabled, c.create_time, c.update_time";

pub(super) fn corrupt(what: &str, detail: impl std::fmt::Display) -> certctl_common::StoreError {
    certctl_common::StoreError::Internal(format!("corrupt value in {what}: {detail}"))
}

pub(super) fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty) => {
        use async_trait::async_trait;
        use certctl_common::StoreError;
        use certctl_domain::UnixTime;
        use certctl_domain::audit::NewAuditEvent;
        use sqlx::Row;

        use crate::model::{
            Action, Delivery, DeliveryState, EventType, InboxGroup, InboxItem, Notification, RoutingRule, Severity,
        };
        use crate::store::sql::{CHANNEL_COLUMNS, DELIVERY_COLUMNS, NOTIFICATION_COLUMNS, corrupt, random_id};
        use crate::store::{
            Before, Claimed, DeliveryFilter, InboxFilter, NotificationFilter, Outbox, Outcome, Result,
            Store, StoredChannel,
        };

        type Tx = sqlx::Transaction<'static, $db>;

        impl $store {
            fn channel_from_row(row: &$row) -> Result<StoredChannel> {
                let config: String = row.try_get("config")?;
                Ok(StoredChannel {
                    id: row.try_get("id")?,
                    display_name: row.try_get("display_name")?,
                    config: serde_json::from_str(&config).map_err(|e| corrupt("channels.config", e))?,
                    sealed_secret: row.try_get("sealed_secret")?,
                    disabled: row.try_get::<i64, _>("disabled")? != 0,
                    create_time: row.try_get("create_time")?,
                    update_time: row.try_get("update_time")?,
                })
            }

            fn rule_from_row(row: &$row) -> Result<RoutingRule> {
                let text: String = row.try_get("rule")?;
                let mut rule: RoutingRule =
                    serde_json::from_str(&text).map_err(|e| corrupt("routing_rules.rule", e))?;
                rule.id = row.try_get("id")?;
                rule.create_time = row.try_get("create_time")?;
                rule.update_time = row.try_get("update_time")?;
                Ok(rule)
            }

            fn notification_from_row(row: &$row) -> Result<Notification> {
                let event_type: String = row.try_get("event_type")?;
                let severity: String = row.try_get("severity")?;
                let recipients: String = row.try_get("recipients")?;
                let details: String = row.try_get("details")?;
                Ok(Notification {
                    id: row.try_get("id")?,
                    event_type: EventType::parse(&event_type)
                        .ok_or_else(|| corrupt("notifications.event_type", &event_type))?,
                    severity: Severity::parse(&severity).ok_or_else(|| corrupt("notifications.severity", &severity))?,
                    certificate: row.try_get("certificate")?,
                    certificate_version: row.try_get("certificate_version")?,
                    owner: row.try_get("owner")?,
                    team: row.try_get("team")?,
                    environment: row.try_get("environment")?,
                    title: row.try_get("title")?,
                    body: row.try_get("body")?,
                    dedup_key: row.try_get("dedup_key")?,
                    alert_key: row.try_get("alert_key")?,
                    recipients: serde_json::from_str(&recipients).map_err(|e| corrupt("notifications.recipients", e))?,
                    details: serde_json::from_str(&details).map_err(|e| corrupt("notifications.details", e))?,
                    create_time: row.try_get("create_time")?,
                    resolve_time: row.try_get("resolve_time")?,
                })
            }

            fn delivery_from_row(row: &$row) -> Result<Delivery> {
                let action: String = row.try_get("action")?;
                let state: String = row.try_get("state")?;
                let int = |column: &str| -> Result<i32> {
                    i32::try_from(row.try_get::<i64, _>(column)?).map_err(|e| corrupt("deliveries", e))
                };
                Ok(Delivery {
                    id: row.try_get("id")?,
                    notification_id: row.try_get("notification_id")?,
                    channel_id: row.try_get("channel_id")?,
                    action: Action::parse(&action).ok_or_else(|| corrupt("deliveries.action", &action))?,
                    state: DeliveryState::parse(&state).ok_or_else(|| corrupt("deliveries.state", &state))?,
                    attempts: int("attempts")?,
                    max_attempts: int("max_attempts")?,
                    next_attempt_at: row.try_get("next_attempt_at")?,
                    last_error: row.try_get("last_error")?,
                    response_status: int("response_status")?,
                    response_excerpt: row.try_get("response_excerpt")?,
                    create_time: row.try_get("create_time")?,
                    update_time: row.try_get("update_time")?,
                })
            }

            async fn write_outbox(tx: &mut Tx, event: &NewAuditEvent) -> Result<()> {
                let text = serde_json::to_string(event)
                    .map_err(|e| StoreError::Internal(format!("an audit event does not serialise: {e}")))?;
                sqlx::query("INSERT INTO outbox (event) VALUES ($1)").bind(text).execute(&mut **tx).await?;
                Ok(())
            }

            /// Runs one statement that changes exactly the row `resource`
            /// names, with its audit event; NOT_FOUND when it changed none.
            async fn change_with_event(
                &self,
                statement: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>,
                resource: String,
                event: NewAuditEvent,
            ) -> Result<()> {
                let mut tx = self.begin().await?;
                let changed = statement.execute(&mut *tx).await?.rows_affected();
                if changed == 0 {
                    return Err(StoreError::NotFound { resource });
                }
                Self::write_outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn insert_deliveries(tx: &mut Tx, deliveries: &[Delivery]) -> Result<()> {
                for d in deliveries {
                    sqlx::query(
                        "INSERT INTO deliveries (id, notification_id, channel_id, action, state, attempts, \
                         max_attempts, next_attempt_at, create_time, update_time) \
                         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $8) \
                         ON CONFLICT (notification_id, channel_id, action) DO NOTHING",
                    )
                    .bind(&d.id)
                    .bind(&d.notification_id)
                    .bind(&d.channel_id)
                    .bind(d.action.as_str())
                    .bind(d.state.as_str())
                    .bind(i64::from(d.max_attempts))
                    .bind(d.next_attempt_at)
                    .bind(d.create_time)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            async fn inbox_item(&self, recipient: &str, id: &str) -> Result<Option<InboxItem>> {
                let sql = format!(
                    "SELECT i.id AS item_id, i.recipient, i.read, i.create_time AS item_time, {NOTIFICATION_COLUMNS} \
                     FROM inbox_items i JOIN notifications n ON n.id = i.notification_id \
                     WHERE i.recipient = $1 AND i.id = $2"
                );
                let row =
                    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(recipient).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(Self::inbox_from_row).transpose()
            }

            fn inbox_from_row(row: &$row) -> Result<InboxItem> {
                Ok(InboxItem {
                    id: row.try_get("item_id")?,
                    recipient: row.try_get("recipient")?,
                    read: row.try_get::<i64, _>("read")? != 0,
                    create_time: row.try_get("item_time")?,
                    notification: Self::notification_from_row(row)?,
                })
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn insert_channel(
                &self,
                channel: &StoredChannel,
                request_id: &str,
                event: NewAuditEvent,
            ) -> Result<StoredChannel> {
                let mut tx = self.begin().await?;
                if !request_id.is_empty() {
                    let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels c WHERE c.request_id = $1");
                    let found = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(request_id).fetch_optional(&mut *tx).await?;
                    if let Some(row) = found {
                        return Self::channel_from_row(&row);
                    }
                }
                let config = serde_json::to_string(&channel.config).map_err(|e| StoreError::Internal(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO channels (id, display_name, kind, config, sealed_secret, disabled, request_id, \
                     create_time, update_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&channel.id)
                .bind(&channel.display_name)
                .bind(channel.config.kind())
                .bind(config)
                .bind(&channel.sealed_secret)
                .bind(i64::from(channel.disabled))
                .bind((!request_id.is_empty()).then_some(request_id))
                .bind(channel.create_time)
                .bind(channel.update_time)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, || channel.name()))?;
                Self::write_outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(channel.clone())
            }

            async fn get_channel(&self, id: &str) -> Result<Option<StoredChannel>> {
                let sql = format!("SELECT {CHANNEL_COLUMNS} FROM channels c WHERE c.id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(Self::channel_from_row).transpose()
            }

            async fn list_channels(
                &self,
                kind: Option<&str>,
                after_id: Option<&str>,
                limit: i64,
            ) -> Result<Vec<StoredChannel>> {
                let sql = format!(
                    "SELECT {CHANNEL_COLUMNS} FROM channels c WHERE ($1 = '' OR c.kind = $1) AND c.id > $2 \
                     ORDER BY c.id LIMIT $3"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(kind.unwrap_or(""))
                    .bind(after_id.unwrap_or(""))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::channel_from_row).collect()
            }

            async fn update_channel(&self, channel: &StoredChannel, event: NewAuditEvent) -> Result<()> {
                let config = serde_json::to_string(&channel.config).map_err(|e| StoreError::Internal(e.to_string()))?;
                let statement = sqlx::query(
                    "UPDATE channels SET display_name = $2, kind = $3, config = $4, sealed_secret = $5, \
                     disabled = $6, update_time = $7 WHERE id = $1",
                )
                .bind(channel.id.clone())
                .bind(channel.display_name.clone())
                .bind(channel.config.kind())
                .bind(config)
                .bind(channel.sealed_secret.clone())
                .bind(i64::from(channel.disabled))
                .bind(channel.update_time);
                self.change_with_event(statement, channel.name(), event).await
            }

            async fn delete_channel(&self, id: &str, event: NewAuditEvent) -> Result<()> {
                let statement = sqlx::query("DELETE FROM channels WHERE id = $1").bind(id.to_owned());
                self.change_with_event(statement, format!("channels/{id}"), event).await
            }

            async fn insert_rule(&self, rule: &RoutingRule, request_id: &str, event: NewAuditEvent) -> Result<RoutingRule> {
                let mut tx = self.begin().await?;
                if !request_id.is_empty() {
                    let found = sqlx::query(
                        "SELECT id, rule, create_time, update_time FROM routing_rules WHERE request_id = $1",
                    )
                    .bind(request_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(row) = found {
                        return Self::rule_from_row(&row);
                    }
                }
                let text = serde_json::to_string(rule).map_err(|e| StoreError::Internal(e.to_string()))?;
                sqlx::query(
                    "INSERT INTO routing_rules (id, rule, request_id, create_time, update_time) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&rule.id)
                .bind(text)
                .bind((!request_id.is_empty()).then_some(request_id))
                .bind(rule.create_time)
                .bind(rule.update_time)
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, || rule.name()))?;
                Self::write_outbox(&mut tx, &event).await?;
                tx.commit().await?;
                Ok(rule.clone())
            }

            async fn get_rule(&self, id: &str) -> Result<Option<RoutingRule>> {
                let row = sqlx::query("SELECT id, rule, create_time, update_time FROM routing_rules WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::rule_from_row).transpose()
            }

            async fn list_rules(&self, after_id: Option<&str>, limit: i64) -> Result<Vec<RoutingRule>> {
                let rows = sqlx::query(
                    "SELECT id, rule, create_time, update_time FROM routing_rules WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::rule_from_row).collect()
            }

            async fn update_rule(&self, rule: &RoutingRule, event: NewAuditEvent) -> Result<()> {
                let text = serde_json::to_string(rule).map_err(|e| StoreError::Internal(e.to_string()))?;
                let statement = sqlx::query("UPDATE routing_rules SET rule = $2, update_time = $3 WHERE id = $1")
                    .bind(rule.id.clone())
                    .bind(text)
                    .bind(rule.update_time);
                self.change_with_event(statement, rule.name(), event).await
            }

            async fn delete_rule(&self, id: &str, event: NewAuditEvent) -> Result<()> {
                let statement = sqlx::query("DELETE FROM routing_rules WHERE id = $1").bind(id.to_owned());
                self.change_with_event(statement, format!("routingRules/{id}"), event).await
            }

            async fn record(&self, n: &Notification, deliveries: &[Delivery], inbox: &[String]) -> Result<bool> {
                let mut tx = self.begin().await?;
                let recipients = serde_json::to_string(&n.recipients).map_err(|e| StoreError::Internal(e.to_string()))?;
                let inserted = sqlx::query(
                    "INSERT INTO notifications (id, dedup_key, alert_key, event_type, severity, certificate, \
                     certificate_version, owner, team, environment, title, body, recipients, details, create_time) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                     ON CONFLICT (dedup_key) DO NOTHING",
                )
                .bind(&n.id)
                .bind(&n.dedup_key)
                .bind(&n.alert_key)
                .bind(n.event_type.as_str())
                .bind(n.severity.as_str())
                .bind(&n.certificate)
                .bind(&n.certificate_version)
                .bind(&n.owner)
                .bind(&n.team)
                .bind(&n.environment)
                .bind(&n.title)
                .bind(&n.body)
                .bind(recipients)
                .bind(n.details.to_string())
                .bind(n.create_time)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Ok(false);
                }
                Self::insert_deliveries(&mut tx, deliveries).await?;
                for recipient in inbox {
                    sqlx::query(
                        "INSERT INTO inbox_items (id, recipient, notification_id, certificate, read, create_time) \
                         VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT (recipient, notification_id) DO NOTHING",
                    )
                    .bind(random_id())
                    .bind(recipient)
                    .bind(&n.id)
                    .bind(&n.certificate)
                    .bind(n.create_time)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn get_notification(&self, id: &str) -> Result<Option<Notification>> {
                let sql = format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE n.id = $1");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(&self.pool).await?;
                row.as_ref().map(Self::notification_from_row).transpose()
            }

            async fn list_notifications(
                &self,
                filter: &NotificationFilter,
                before: Before,
                limit: i64,
            ) -> Result<Vec<Notification>> {
                let (time, id) = before.unwrap_or((i64::MAX, String::new()));
                let sql = format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications n \
                     WHERE ($1 = '' OR n.event_type = $1) AND ($2 = '' OR n.certificate = $2) \
                     AND (n.create_time < $3 OR (n.create_time = $3 AND ($4 = '' OR n.id < $4))) \
                     ORDER BY n.create_time DESC, n.id DESC LIMIT $5"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(filter.event_type.map_or("", EventType::as_str))
                    .bind(filter.certificate.clone().unwrap_or_default())
                    .bind(time)
                    .bind(id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::notification_from_row).collect()
            }

            async fn open_alerts(&self) -> Result<Vec<Notification>> {
                let sql = format!(
                    "SELECT {NOTIFICATION_COLUMNS} FROM notifications n \
                     WHERE n.alert_key <> '' AND n.resolve_time IS NULL ORDER BY n.create_time, n.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
                rows.iter().map(Self::notification_from_row).collect()
            }

            async fn resolve(&self, id: &str, now: UnixTime, resolvers: &[&str], max_attempts: i32) -> Result<usize> {
                let mut tx = self.begin().await?;
                let marked = sqlx::query(
                    "UPDATE notifications SET resolve_time = $2 WHERE id = $1 AND resolve_time IS NULL",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if marked == 0 {
                    return Ok(0);
                }
                sqlx::query(
                    "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, claim_token = NULL, \
                     last_error = 'resolved before it was delivered', update_time = $2 \
                     WHERE notification_id = $1 AND action = 'trigger' AND state = 'pending'",
                )
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let delivered = sqlx::query(
                    "SELECT d.channel_id, c.kind FROM deliveries d JOIN channels c ON c.id = d.channel_id \
                     WHERE d.notification_id = $1 AND d.action = 'trigger' AND d.state = 'delivered'",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                let mut resolves = Vec::new();
                for row in &delivered {
                    let kind: String = row.try_get("kind")?;
                    if resolvers.contains(&kind.as_str()) {
                        resolves.push(Delivery {
                            id: random_id(),
                            notification_id: id.to_owned(),
                            channel_id: row.try_get("channel_id")?,
                            action: Action::Resolve,
                            state: DeliveryState::Pending,
                            attempts: 0,
                            max_attempts,
                            next_attempt_at: Some(now),
                            last_error: String::new(),
                            response_status: 0,
                            response_excerpt: String::new(),
                            create_time: now,
                            update_time: now,
                        });
                    }
                }
                Self::insert_deliveries(&mut tx, &resolves).await?;
                tx.commit().await?;
                Ok(resolves.len())
            }

            async fn claim_deliveries(&self, now: UnixTime, lease_secs: i64, limit: i64) -> Result<Vec<Claimed>> {
                let token = random_id();
                let mut tx = self.begin().await?;
                // The outer conditions repeat the inner ones: on PostgreSQL a
                // row another claimer updated meanwhile is re-checked against
                // them and skipped, so no delivery is claimed twice.
                sqlx::query(
                    "UPDATE deliveries SET claim_token = $1, next_attempt_at = $2, attempts = attempts + 1, \
                     update_time = $3 \
                     WHERE state = 'pending' AND next_attempt_at <= $3 AND id IN (\
                        SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $3 \
                        ORDER BY next_attempt_at, id LIMIT $4)",
                )
                .bind(&token)
                .bind(now + lease_secs)
                .bind(now)
                .bind(limit)
                .execute(&mut *tx)
                .await?;
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS}, c.id AS channel_row, \
                     c.display_name AS channel_display_name, c.kind, c.config, c.sealed_secret, c.disabled, \
                     c.create_time AS channel_create_time, c.update_time AS channel_update_time \
                     FROM deliveries d LEFT JOIN channels c ON c.id = d.channel_id WHERE d.claim_token = $1 \
                     ORDER BY d.create_time, d.id"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&token).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let mut claimed = Vec::with_capacity(rows.len());
                for row in &rows {
                    let delivery = Self::delivery_from_row(row)?;
                    let notification = self
                        .get_notification(&delivery.notification_id)
                        .await?
                        .ok_or_else(|| corrupt("deliveries.notification_id", &delivery.notification_id))?;
                    let channel = match row.try_get::<Option<String>, _>("channel_row")? {
                        None => None,
                        Some(id) => {
                            let config: String = row.try_get("config")?;
                            Some(StoredChannel {
                                id,
                                display_name: row.try_get("channel_display_name")?,
                                config: serde_json::from_str(&config).map_err(|e| corrupt("channels.config", e))?,
                                sealed_secret: row.try_get("sealed_secret")?,
                                disabled: row.try_get::<i64, _>("disabled")? != 0,
                                create_time: row.try_get("channel_create_time")?,
                                update_time: row.try_get("channel_update_time")?,
                            })
                        }
                    };
                    claimed.push(Claimed { delivery, token: token.clone(), notification, channel });
                }
                Ok(claimed)
            }

            async fn finish_delivery(&self, id: &str, token: &str, outcome: &Outcome, now: UnixTime) -> Result<bool> {
                let (state, next, error, status, excerpt) = match outcome {
                    Outcome::Delivered { status, excerpt } => ("delivered", None, "", *status, excerpt.as_str()),
                    Outcome::Retry { next_attempt_at, error, status, excerpt } => {
                        ("pending", Some(*next_attempt_at), error.as_str(), *status, excerpt.as_str())
                    }
                    Outcome::Failed { error, status, excerpt } => ("failed", None, error.as_str(), *status, excerpt.as_str()),
                };
                let mut tx = self.begin().await?;
                let changed = sqlx::query(
                    "UPDATE deliveries SET state = $3, next_attempt_at = $4, last_error = $5, response_status = $6, \
                     response_excerpt = $7, update_time = $8, claim_token = NULL \
                     WHERE id = $1 AND claim_token = $2 AND state = 'pending'",
                )
                .bind(id)
                .bind(token)
                .bind(state)
                .bind(next)
                .bind(error)
                .bind(i64::from(status))
                .bind(excerpt)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(changed == 1)
            }

            async fn next_due(&self) -> Result<Option<UnixTime>> {
                Ok(sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending'")
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn get_delivery(&self, notification_id: &str, id: &str) -> Result<Option<Delivery>> {
                let sql =
                    format!("SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.notification_id = $1 AND d.id = $2");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(notification_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::delivery_from_row).transpose()
            }

            async fn list_deliveries(&self, filter: &DeliveryFilter, before: Before, limit: i64) -> Result<Vec<Delivery>> {
                let (time, id) = before.unwrap_or((i64::MAX, String::new()));
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d \
                     WHERE ($1 = '' OR d.notification_id = $1) AND ($2 = '' OR d.state = $2) \
                     AND ($3 = '' OR d.channel_id = $3) \
                     AND (d.create_time < $4 OR (d.create_time = $4 AND ($5 = '' OR d.id < $5))) \
                     ORDER BY d.create_time DESC, d.id DESC LIMIT $6"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(filter.notification_id.clone().unwrap_or_default())
                    .bind(filter.state.map_or("", DeliveryState::as_str))
                    .bind(filter.channel_id.clone().unwrap_or_default())
                    .bind(time)
                    .bind(id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::delivery_from_row).collect()
            }

            async fn retry_delivery(
                &self,
                notification_id: &str,
                id: &str,
                now: UnixTime,
                event: NewAuditEvent,
            ) -> Result<Delivery> {
                let name = format!("notifications/{notification_id}/deliveries/{id}");
                let Some(current) = self.get_delivery(notification_id, id).await? else {
                    return Err(StoreError::NotFound { resource: name });
                };
                if current.state != DeliveryState::Failed {
                    return Err(StoreError::FailedPrecondition(format!(
                        "{name} is {}; only a failed delivery can be retried",
                        current.state.as_str()
                    )));
                }
                let statement = sqlx::query(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $3, claim_token = NULL, \
                     update_time = $3 WHERE notification_id = $1 AND id = $2 AND state = 'failed'",
                )
                .bind(notification_id.to_owned())
                .bind(id.to_owned())
                .bind(now);
                self.change_with_event(statement, name.clone(), event).await?;
                self.get_delivery(notification_id, id).await?.ok_or(StoreError::NotFound { resource: name })
            }

            async fn list_inbox(&self, filter: &InboxFilter, before: Before, limit: i64) -> Result<Vec<InboxItem>> {
                let (time, id) = before.unwrap_or((i64::MAX, String::new()));
                let sql = format!(
                    "SELECT i.id AS item_id, i.recipient, i.read, i.create_time AS item_time, {NOTIFICATION_COLUMNS} \
                     FROM inbox_items i JOIN notifications n ON n.id = i.notification_id \
                     WHERE i.recipient = $1 AND ($2 = 0 OR i.read = 0) AND ($3 = '' OR i.certificate = $3) \
                     AND (i.create_time < $4 OR (i.create_time = $4 AND ($5 = '' OR i.id < $5))) \
                     ORDER BY i.create_time DESC, i.id DESC LIMIT $6"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&filter.recipient)
                    .bind(i64::from(filter.unread_only))
                    .bind(filter.certificate.clone().unwrap_or_default())
                    .bind(time)
                    .bind(id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::inbox_from_row).collect()
            }

            async fn inbox_groups(&self, recipient: &str, offset: i64, limit: i64) -> Result<Vec<InboxGroup>> {
                let groups = sqlx::query(
                    "SELECT certificate, COUNT(*) AS total, COUNT(*) FILTER (WHERE read = 0) AS unread, \
                     MAX(create_time) AS latest FROM inbox_items WHERE recipient = $1 \
                     GROUP BY certificate ORDER BY latest DESC, certificate LIMIT $2 OFFSET $3",
                )
                .bind(recipient)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(groups.len());
                for row in &groups {
                    let certificate: String = row.try_get("certificate")?;
                    let filter = InboxFilter {
                        recipient: recipient.to_owned(),
                        unread_only: false,
                        certificate: Some(certificate.clone()),
                    };
                    // `certificate = ''` matches the group of events about no certificate.
                    let latest = if certificate.is_empty() {
                        let sql = format!(
                            "SELECT i.id AS item_id, i.recipient, i.read, i.create_time AS item_time, \
                             {NOTIFICATION_COLUMNS} FROM inbox_items i JOIN notifications n ON n.id = i.notification_id \
                             WHERE i.recipient = $1 AND i.certificate = '' ORDER BY i.create_time DESC, i.id DESC LIMIT 1"
                        );
                        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(recipient).fetch_one(&self.pool).await?;
                        Self::inbox_from_row(&row)?
                    } else {
                        self.list_inbox(&filter, None, 1)
                            .await?
                            .pop()
                            .ok_or_else(|| corrupt("inbox_items", "a group without items"))?
                    };
                    out.push(InboxGroup {
                        certificate,
                        total: row.try_get("total")?,
                        unread: row.try_get("unread")?,
                        latest,
                    });
                }
                Ok(out)
            }

            async fn set_read(&self, recipient: &str, id: &str, read: bool) -> Result<Option<InboxItem>> {
                sqlx::query("UPDATE inbox_items SET read = $3 WHERE recipient = $1 AND id = $2")
                    .bind(recipient)
                    .bind(id)
                    .bind(i64::from(read))
                    .execute(&self.pool)
                    .await?;
                self.inbox_item(recipient, id).await
            }

            async fn cursor(&self, name: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM cursors WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn set_cursor(&self, name: &str, value: &str) -> Result<()> {
                sqlx::query(
                    "INSERT INTO cursors (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn try_lead(&self, name: &str, holder: &str, now: UnixTime, ttl_secs: i64) -> Result<bool> {
                let changed = sqlx::query(
                    "INSERT INTO leaders (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                     WHERE leaders.holder = excluded.holder OR leaders.expires_at <= $4",
                )
                .bind(name)
                .bind(holder)
                .bind(now + ttl_secs)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(changed == 1)
            }

            async fn release(&self, name: &str, holder: &str) -> Result<()> {
                sqlx::query("DELETE FROM leaders WHERE name = $1 AND holder = $2")
                    .bind(name)
                    .bind(holder)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl Outbox for $store {
            async fn outbox_batch(&self, limit: i64) -> Result<Vec<certctl_outbox::OutboxEntry>> {
                let rows =
                    sqlx::query("SELECT id, event FROM outbox ORDER BY id LIMIT $1").bind(limit).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|row| {
                        let text: String = row.try_get("event")?;
                        Ok(certctl_outbox::OutboxEntry {
                            id: row.try_get("id")?,
                            event: serde_json::from_str(&text).map_err(|e| corrupt("outbox.event", e))?,
                        })
                    })
                    .collect()
            }

            async fn outbox_ack(&self, ids: &[i64]) -> Result<()> {
                for id in ids {
                    sqlx::query("DELETE FROM outbox WHERE id = $1").bind(id).execute(&self.pool).await?;
                }
                Ok(())
            }
        }
    };
}

pub(super) use sql_store;
