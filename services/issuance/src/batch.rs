//! Group commit of signed certificates.
//!
//! Signing is CPU work that runs in parallel; recording a certificate is a
//! database commit, and commits are what a database does one at a time (the
//! SQLite write lock, the PostgreSQL WAL flush). So every signing request
//! hands its record and audit event to one writer task, which writes
//! whatever has queued up, up to [`MAX_BATCH`], in one transaction, and then
//! answers each caller. There is no fixed delay: when the queue is empty the
//! next request is written at once, alone, and requests that arrive during a
//! commit make up the next batch. Under light load latency is one commit;
//! under heavy load a commit carries hundreds of certificates.
//!
//! Every caller gets its own answer:
//! - Two requests with the same request id in one batch: the first is
//!   written, the other is answered with the first's certificate (or error).
//!   A request id already in the database (an earlier batch, another
//!   replica) is skipped by the store and answered with the stored record.
//! - When a batch fails for a reason one row may cause, its certificates are
//!   written one by one, so the row at fault gets its own error and the others
//!   are recorded. When the database is unavailable, every caller gets that.
//!
//! The writer stops once every [`IssuedWriter`] is dropped and the queue
//! is drained, so nothing handed to it is lost at shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use certctl_common::StoreError;
use certctl_domain::audit::NewAuditEvent;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::{IssuedRecord, Store};

/// The most certificates one transaction records. Measured with
/// `certctl-bench issue-phases --batch N`: on SQLite the cost per row falls
/// to ~90 µs at 64 rows and rises again beyond (~190 µs at 256); PostgreSQL
/// keeps falling, but a batch of 64 already takes it to a few µs of commit
/// per certificate.
pub const MAX_BATCH: usize = 64;
/// Requests waiting for the writer at most; further callers wait to queue.
const QUEUE: usize = 4 * MAX_BATCH;

struct Pending {
    record: IssuedRecord,
    event: NewAuditEvent,
    reply: oneshot::Sender<Result<IssuedRecord, StoreError>>,
}

/// Counters of the writer, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions that recorded at least one certificate (fallback
    /// single-row retries count one each).
    pub commits: AtomicU64,
    /// Certificates handed to the writer.
    pub records: AtomicU64,
    /// The largest batch so far.
    pub largest_batch: AtomicU64,
}

/// The handle signing requests use; cheap to clone.
#[derive(Clone)]
pub struct IssuedWriter {
    queue: mpsc::Sender<Pending>,
    stats: Arc<WriterStats>,
}

/// The writer's loop; run it with `tokio::spawn(task.run())`.
pub struct WriterTask {
    store: Arc<dyn Store>,
    queue: mpsc::Receiver<Pending>,
    wrote: Arc<Notify>,
    max_batch: usize,
    stats: Arc<WriterStats>,
}

impl IssuedWriter {
    /// A writer over `store` that notifies `wrote` after each commit (the
    /// outbox relay waits on it). Nothing is written until the task runs.
    pub fn new(store: Arc<dyn Store>, wrote: Arc<Notify>, max_batch: usize) -> (Self, WriterTask) {
        let (tx, rx) = mpsc::channel(QUEUE.max(max_batch));
        let stats = Arc::new(WriterStats::default());
        let task = WriterTask { store, queue: rx, wrote, max_batch: max_batch.max(1), stats: stats.clone() };
        (Self { queue: tx, stats }, task)
    }

    /// Records a signed certificate with its audit event. Returns the record
    /// now stored for its request id: `record` itself, or the certificate an
    /// earlier request with the same request id got.
    pub async fn write(&self, record: IssuedRecord, event: NewAuditEvent) -> Result<IssuedRecord, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { record, event, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the certificate writer has stopped".to_owned()))?;
        answer.await.map_err(|_| StoreError::Internal("the certificate writer dropped a request".to_owned()))?
    }

    /// Requests queued and not yet taken by the writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

impl WriterTask {
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while self.queue.recv_many(&mut batch, self.max_batch).await > 0 {
            let n = batch.len() as u64;
            self.stats.records.fetch_add(n, Ordering::Relaxed);
            self.stats.largest_batch.fetch_max(n, Ordering::Relaxed);
            self.write(std::mem::take(&mut batch)).await;
        }
    }

    async fn write(&self, batch: Vec<Pending>) {
        // The first request with a request id writes; later ones in the same
        // batch wait for its outcome.
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut writers: Vec<Pending> = Vec::with_capacity(batch.len());
        let mut repeats: Vec<(usize, Pending)> = Vec::new();
        for p in batch {
            match p.record.request_id.clone() {
                Some(id) => match first.get(&id) {
                    Some(&i) => repeats.push((i, p)),
                    None => {
                        first.insert(id, writers.len());
                        writers.push(p);
                    }
                },
                None => writers.push(p),
            }
        }
        let outcomes = self.record(&writers).await;
        for (i, p) in repeats {
            let _ = p.reply.send(match &outcomes[i] {
                Ok(winner) => Ok(winner.clone()),
                Err(e) => Err(copy(e)),
            });
        }
        for (p, outcome) in writers.into_iter().zip(outcomes) {
            // A caller that went away still had its certificate recorded.
            let _ = p.reply.send(outcome);
        }
    }

    /// The outcome of each of `batch` (with distinct request ids).
    async fn record(&self, batch: &[Pending]) -> Vec<Result<IssuedRecord, StoreError>> {
        let records: Vec<IssuedRecord> = batch.iter().map(|p| p.record.clone()).collect();
        let events: Vec<NewAuditEvent> = batch.iter().map(|p| p.event.clone()).collect();
        match self.store.insert_issued(&records, &events).await {
            Ok(inserted) => {
                self.committed();
                let mut out = Vec::with_capacity(records.len());
                for (record, inserted) in records.into_iter().zip(inserted) {
                    out.push(if inserted { Ok(record) } else { self.stored_instead(&record).await });
                }
                out
            }
            Err(e) if batch.len() == 1 || matches!(e, StoreError::Unavailable(_)) => {
                batch.iter().map(|_| Err(copy(&e))).collect()
            }
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "a batch of certificates failed; recording them one by one");
                let mut out = Vec::with_capacity(records.len());
                for (record, event) in records.into_iter().zip(events) {
                    out.push(match self.store.insert_issued(std::slice::from_ref(&record), &[event]).await {
                        Ok(inserted) => {
                            self.committed();
                            if inserted.first() == Some(&true) {
                                Ok(record)
                            } else {
                                self.stored_instead(&record).await
                            }
                        }
                        Err(e) => Err(e),
                    });
                }
                out
            }
        }
    }

    /// The record stored under `record`'s request id by an earlier request.
    async fn stored_instead(&self, record: &IssuedRecord) -> Result<IssuedRecord, StoreError> {
        let id = record.request_id.as_deref().unwrap_or_default();
        self.store.issued_by_request(id).await?.ok_or_else(|| {
            StoreError::Unavailable(format!("the certificate recorded for request {id} vanished; retry the request"))
        })
    }

    fn committed(&self) {
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.wrote.notify_one();
    }
}

/// The same error for another caller of the batch.
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound { resource } => StoreError::NotFound { resource: resource.clone() },
        StoreError::AlreadyExists { resource } => StoreError::AlreadyExists { resource: resource.clone() },
        StoreError::FailedPrecondition(m) => StoreError::FailedPrecondition(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
    }
}
