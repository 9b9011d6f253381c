//! Group commit of approvals.
//!
//! Gapless numbering and the audit chain make approvals of one issuer commit one after the
//! other: the sequence row and the audit head are held until commit. On PostgreSQL a commit
//! waits for its WAL fsync (6 to 12 ms on this project's machines), so one approval per
//! commit caps an issuer near 100 per second whatever the hardware does in between.
//!
//! Here approvals are queued, and a short-lived task commits everything queued in one
//! transaction ([`Store::approve_batch`]), in arrival order, then takes what arrived in the
//! meantime. No timer: while one commit waits for its fsync the next batch fills, so a lone
//! approval is committed at once and a busy issuer's approvals share fsyncs. The task ends when
//! the queue is empty. Each approval still succeeds or fails on its own.

use std::sync::{Arc, Mutex};

use originlink_store::{Approval, Certificate, Store, StoreError};
use tokio::sync::oneshot;

/// By default at most this many approvals share one transaction (`[authority]
/// approvals_per_commit`).
pub use crate::config::APPROVALS_PER_COMMIT as MAX_BATCH;

type Reply = oneshot::Sender<Result<Certificate, StoreError>>;

/// The queue of approvals waiting for a commit, and whether a task is committing.
pub struct GroupCommit {
    queue: Mutex<Queue>,
    max: usize,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<(Approval, Reply)>,
    running: bool,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// At most `max` approvals per commit (at least one).
    pub fn new(max: usize) -> GroupCommit {
        GroupCommit { queue: Mutex::default(), max: max.max(1) }
    }

    /// Queues `approval` and waits for the commit that carries it.
    pub async fn approve(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        approval: Approval,
    ) -> Result<Certificate, StoreError> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut q = self.lock();
            q.waiting.push((approval, reply));
            !std::mem::replace(&mut q.running, true)
        };
        if start {
            let (me, store) = (self.clone(), store.clone());
            tokio::spawn(async move { me.drain(store).await });
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Backend("the approval was not committed".into())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits batches until the queue is empty.
    async fn drain(&self, store: Arc<dyn Store>) {
        // If a commit panics, the task ends: the guard drops what waits (each waiter gets an
        // error) and lets the next approval start a task.
        let _guard = Running(self);
        loop {
            let batch: Vec<(Approval, Reply)> = {
                let mut q = self.lock();
                if q.waiting.is_empty() {
                    q.running = false;
                    return;
                }
                let n = q.waiting.len().min(self.max);
                q.waiting.drain(..n).collect()
            };
            let (approvals, replies): (Vec<Approval>, Vec<Reply>) = batch.into_iter().unzip();
            match store.approve_batch(approvals).await {
                Ok(results) => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }
}

/// Marks the queue idle when the committing task panics (it marks it itself otherwise).
struct Running<'a>(&'a GroupCommit);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut q = self.0.lock();
            q.waiting.clear();
            q.running = false;
        }
    }
}
