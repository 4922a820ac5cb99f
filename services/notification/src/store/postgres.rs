//! The notification store on PostgreSQL (schema `notification`): any number
//! of replicas share it; the rows coordinate them (see `store`).

use sqlx::postgres::PgPool;

use super::sql::sql_store;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }
}

sql_store!(PostgresStore, sqlx::Postgres, sqlx::postgres::PgRow);
