//! Leadership of singleton loops (the renewal scan, clean-ups): at most one
//! replica runs each at a time.

use tokio::sync::watch;

/// Leadership of one named loop; released when dropped.
///
/// On PostgreSQL it is an advisory lock held by a dedicated connection that a
/// keeper task pings: if the connection dies, the server releases the lock
/// (another replica may take it) and `lost` fires within one ping interval.
/// Between the death and the next ping both replicas may believe they lead,
/// so the work under a leadership must stay idempotent (the renewal scan is:
/// its jobs carry idempotency keys). On SQLite, one process owns the file and
/// leadership is an in-process lock that is never lost.
pub struct Leadership {
    name: String,
    lost: watch::Receiver<bool>,
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").field("name", &self.name).field("held", &self.is_held()).finish()
    }
}

impl Leadership {
    /// `lost` turns true (or its sender drops) when leadership ends;
    /// `release` runs on drop.
    pub(crate) fn new(name: &str, lost: watch::Receiver<bool>, release: Box<dyn FnOnce() + Send + Sync>) -> Self {
        Self { name: name.to_owned(), lost, release: Some(release) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// False once leadership was lost; check before each singleton step.
    pub fn is_held(&self) -> bool {
        !*self.lost.borrow() && self.lost.has_changed().is_ok()
    }

    /// Resolves when leadership is lost. Stop the singleton work then.
    pub async fn lost(&mut self) {
        let _ = self.lost.wait_for(|lost| *lost).await;
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}
