//! The notification store on SQLite: one process owns the file. A write
//! transaction takes the write lock up front (`BEGIN IMMEDIATE`), so
//! concurrent writers queue instead of failing to upgrade a read lock.

use sqlx::sqlite::SqlitePool;

use super::sql::sql_store;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

sql_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
