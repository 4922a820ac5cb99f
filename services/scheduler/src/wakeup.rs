//! Wake-ups: "there may be new work", from this process or another replica.
//!
//! A counter in a `watch` channel rather than a `Notify`: a wake-up that
//! arrives while a worker is busy claiming is remembered until it next waits,
//! so nothing enqueued between "the claim found nothing" and "go to sleep" is
//! slept through.

use std::sync::Arc;

use tokio::sync::watch;

/// Agent notices a slow hub may fall behind by before it resynchronises.
const AGENT_NOTICE_BACKLOG: usize = 4096;

/// A subscription to wake-ups. Each worker holds its own.
#[derive(Debug, Clone)]
pub struct Wakeups {
    rx: watch::Receiver<u64>,
}

impl Wakeups {
    /// Forgets the wake-ups so far; call just before looking for work.
    pub fn mark_seen(&mut self) {
        self.rx.borrow_and_update();
    }

    /// Resolves at the first wake-up since the last `mark_seen` (or since
    /// this subscription was made).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            // The store is gone: nothing will wake us any more.
            std::future::pending::<()>().await;
        }
    }
}

/// The sending side, shared by a store and its clones.
#[derive(Debug)]
pub(crate) struct WakeHub {
    tx: Arc<watch::Sender<u64>>,
    agents: tokio::sync::broadcast::Sender<String>,
    // Keeps the channel open while the store lives, so a listener task that
    // waits for `closed()` ends only with the store and its subscriptions.
    _keepalive: watch::Receiver<u64>,
}

impl WakeHub {
    pub(crate) fn new() -> Self {
        let (tx, rx) = watch::channel(0);
        let (agents, _) = tokio::sync::broadcast::channel(AGENT_NOTICE_BACKLOG);
        Self { tx: Arc::new(tx), agents, _keepalive: rx }
    }

    /// Names an agent that has new work.
    pub(crate) fn agent_work(&self, agent: &str) {
        // No receiver is fine: no hub is watching this replica.
        let _ = self.agents.send(agent.to_owned());
    }

    pub(crate) fn agent_notices(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.agents.subscribe()
    }

    /// For the listener that forwards other replicas' agent notices.
    pub(crate) fn agent_sender(&self) -> tokio::sync::broadcast::Sender<String> {
        self.agents.clone()
    }

    pub(crate) fn wake(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn subscribe(&self) -> Wakeups {
        let mut rx = self.tx.subscribe();
        rx.borrow_and_update();
        Wakeups { rx }
    }

    /// For a task that forwards remote wake-ups and ends with the store.
    pub(crate) fn sender(&self) -> Arc<watch::Sender<u64>> {
        self.tx.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_wake_up_before_waiting_is_not_lost() {
        let hub = WakeHub::new();
        let mut w = hub.subscribe();
        hub.wake();
        tokio::time::timeout(Duration::from_millis(100), w.changed()).await.expect("remembered");
        hub.wake();
        w.mark_seen();
        assert!(tokio::time::timeout(Duration::from_millis(50), w.changed()).await.is_err(), "seen");
    }
}
