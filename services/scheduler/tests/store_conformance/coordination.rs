//! Replicas sharing one database: claims never overlap, wake-ups reach every
//! replica, and one replica leads each singleton loop.

use std::collections::HashSet;
use std::time::Duration;

use certctl_domain::job::NewJob;
use certctl_scheduler::store::{LeaseRef, PostgresStore, Store};

use crate::support::{Backend, TestDb, enqueue, new_job, on_postgres};

async fn concurrent_claimers_never_share_a_job<S: Backend>(db: TestDb<S>) {
    let jobs: Vec<NewJob> = (0..400).map(|i| new_job(&format!("k{i}"))).collect();
    db.store.enqueue_many(jobs).await.expect("enqueue");
    let mut tasks = Vec::new();
    for w in 0..4 {
        let replica = db.replica().await;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = replica.claim(&format!("w{w}"), 7, 60).await.expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                for job in batch {
                    replica.succeed(&LeaseRef::of(&job).expect("lease"), serde_json::json!(w)).await.expect("succeed");
                    mine.push(job.id);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("no panic"));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 400, "every job claimed once");
    assert_eq!(distinct.len(), 400, "no job claimed twice");
}

async fn wakeups_reach_every_replica<S: Backend>(db: TestDb<S>) {
    let replica = db.replica().await;
    let mut remote = replica.wakeups();
    let mut local = db.store.wakeups();
    // Let the PostgreSQL listener start before the first NOTIFY.
    tokio::time::sleep(Duration::from_millis(300)).await;
    remote.mark_seen();
    local.mark_seen();
    enqueue(db.store.as_ref(), "k").await;
    tokio::time::timeout(Duration::from_secs(5), local.changed()).await.expect("a local wake-up");
    tokio::time::timeout(Duration::from_secs(5), remote.changed()).await.expect("a wake-up from another replica");
    // Re-enqueueing an existing key creates nothing and wakes nobody.
    tokio::time::sleep(Duration::from_millis(200)).await;
    local.mark_seen();
    enqueue(db.store.as_ref(), "k").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), local.changed()).await.is_err(),
        "no new work, no wake-up"
    );
}

async fn one_replica_leads_each_loop<S: Backend>(db: TestDb<S>) {
    let replica = db.replica().await;
    let mut leader = db.store.try_lead("renewal-scan").await.expect("try_lead").expect("the first candidate leads");
    assert!(leader.is_held());
    assert_eq!(leader.name(), "renewal-scan");
    assert!(replica.try_lead("renewal-scan").await.expect("try_lead").is_none(), "one leader at a time");
    let other = replica.try_lead("cleanup").await.expect("try_lead").expect("another loop has its own leader");
    drop(leader);
    // Releasing is asynchronous on PostgreSQL: the keeper task unlocks.
    let mut taken = None;
    for _ in 0..100 {
        taken = replica.try_lead("renewal-scan").await.expect("try_lead");
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    leader = taken.expect("the next candidate leads once the first lets go");
    assert!(leader.is_held() && other.is_held());
    assert!(tokio::time::timeout(Duration::from_millis(300), leader.lost()).await.is_err(), "nothing is lost");
}

/// PostgreSQL only: a leader whose lock connection dies learns it has lost,
/// and another replica can take over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_leadership_is_lost_with_its_connection() {
    on_postgres(|db: TestDb<PostgresStore>| async move {
        let mut leader = db.store.try_lead("renewal-scan").await.expect("try_lead").expect("leads");
        let killed: Vec<bool> = sqlx::query_scalar(
            // Only this test's database: other tests hold advisory locks of their own.
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_all(db.store.pool())
        .await
        .expect("terminate the lock's backend");
        assert_eq!(killed, [true]);
        tokio::time::timeout(Duration::from_secs(5), leader.lost()).await.expect("the loss is noticed");
        assert!(!leader.is_held());
        let replica = db.replica().await;
        assert!(replica.try_lead("renewal-scan").await.expect("try_lead").is_some(), "the lock was freed");
    })
    .await;
}

on_both!(concurrent_claimers_never_share_a_job, wakeups_reach_every_replica, one_replica_leads_each_loop);
