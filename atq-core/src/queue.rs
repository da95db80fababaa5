//! The run queue shared by every client of one service: at most K runs at once, the others
//! waiting in submission order; a queued entry can be withdrawn without ever running.
//!
//! It orders *admission*, nothing else: a [`Ticket`] resolves to a [`Slot`] when its turn comes,
//! and the slot is handed back when it is dropped (the run ended, however), which admits the
//! next ticket. The director's own semaphore ([`Director::with_concurrency`]) orders deploys of
//! one process; this queue adds what a service needs on top: positions, withdrawal by id, and
//! the order in which runs were *submitted* (not the order in which their futures were first
//! polled).
//!
//! [`Director::with_concurrency`]: crate::Director::with_concurrency

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The queue. Cheap to clone; clones share it.
#[derive(Debug, Clone)]
pub struct RunQueue {
    /// The slots and the waiting line.
    state: Arc<Mutex<QueueState>>,
}

#[derive(Debug)]
struct QueueState {
    /// At most this many slots are held at once.
    limit: usize,
    /// Slots held now.
    running: usize,
    /// Entries waiting for a slot, oldest first.
    waiting: VecDeque<Waiting>,
}

#[derive(Debug)]
struct Waiting {
    /// The id it was submitted under.
    id: String,
    /// Where its slot goes when its turn comes.
    admit: oneshot::Sender<Slot>,
}

/// A place in the queue: resolves to a [`Slot`] when its turn comes.
#[derive(Debug)]
#[must_use = "a ticket does nothing unless awaited"]
pub struct Ticket {
    /// The slot, once admitted; closed when the entry was withdrawn.
    admitted: oneshot::Receiver<Slot>,
}

/// Why a [`Ticket`] will never be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the run was withdrawn from the queue before its turn")]
pub struct Withdrawn;

impl Ticket {
    /// Waits for the turn; the slot is held until dropped.
    ///
    /// # Errors
    /// [`Withdrawn`] when the entry was withdrawn ([`RunQueue::withdraw`]) before its turn.
    pub async fn admitted(self) -> Result<Slot, Withdrawn> {
        self.admitted.await.map_err(|_| Withdrawn)
    }
}

/// One of the K slots, held by a run until it ends; dropping it admits the next entry.
#[derive(Debug)]
pub struct Slot {
    /// The queue it goes back to (None: never handed out).
    queue: Option<RunQueue>,
    /// When it was handed out, read under the queue's lock: admissions' times follow their order.
    admitted_at: std::time::SystemTime,
}

impl Slot {
    /// When the entry was admitted (in admission order: later admissions never have earlier times,
    /// unless the system clock steps back).
    #[must_use]
    pub fn admitted_at(&self) -> std::time::SystemTime {
        self.admitted_at
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            let mut state = queue.lock();
            state.running = state.running.saturating_sub(1);
            queue.admit_next(&mut state);
        }
    }
}

impl RunQueue {
    /// A queue running at most `limit` entries at once (at least 1).
    #[must_use]
    pub fn new(limit: usize) -> Self {
        RunQueue {
            state: Arc::new(Mutex::new(QueueState { limit: limit.max(1), running: 0, waiting: VecDeque::new() })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // A panic while holding the lock leaves the counts consistent (no step can panic midway).
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends an entry under `id`; it is admitted at once when a slot is free and nobody waits.
    pub fn submit(&self, id: impl Into<String>) -> Ticket {
        let (admit, admitted) = oneshot::channel();
        let mut state = self.lock();
        state.waiting.push_back(Waiting { id: id.into(), admit });
        self.admit_next(&mut state);
        Ticket { admitted }
    }

    /// Admits waiting entries while slots are free (skipping those whose ticket was dropped).
    fn admit_next(&self, state: &mut QueueState) {
        while state.running < state.limit {
            let Some(next) = state.waiting.pop_front() else { return };
            state.running += 1;
            if let Err(mut slot) =
                next.admit.send(Slot { queue: Some(self.clone()), admitted_at: std::time::SystemTime::now() })
            {
                // Its ticket is gone: the slot comes straight back (without re-entering the lock).
                slot.queue = None;
                state.running -= 1;
            }
        }
    }

    /// Withdraws the waiting entry `id`: its ticket resolves to [`Withdrawn`]. Returns whether
    /// it was waiting (false: unknown, already admitted, or already withdrawn — idempotent).
    pub fn withdraw(&self, id: &str) -> bool {
        let mut state = self.lock();
        match state.waiting.iter().position(|w| w.id == id) {
            Some(index) => {
                state.waiting.remove(index);
                true
            }
            None => false,
        }
    }

    /// The 0-based place of `id` among the waiting entries (None: not waiting).
    #[must_use]
    pub fn position(&self, id: &str) -> Option<usize> {
        self.lock().waiting.iter().position(|w| w.id == id)
    }

    /// How many entries hold a slot now.
    #[must_use]
    pub fn running(&self) -> usize {
        self.lock().running
    }

    /// How many entries wait.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    /// At most this many entries at once.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.lock().limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_at_most_the_limit_and_the_rest_in_submission_order() {
        let queue = RunQueue::new(2);
        let a = queue.submit("a").admitted().await.unwrap();
        let _b = queue.submit("b").admitted().await.unwrap();
        let c = queue.submit("c");
        let d = queue.submit("d");
        assert_eq!((queue.running(), queue.waiting()), (2, 2));
        assert_eq!(queue.position("c"), Some(0));
        assert_eq!(queue.position("d"), Some(1));
        drop(a);
        let _c = c.admitted().await.unwrap();
        assert_eq!(queue.position("d"), Some(0));
        assert_eq!(queue.running(), 2);
        drop(d);
    }

    #[tokio::test]
    async fn a_withdrawn_entry_never_runs_and_withdrawing_twice_is_harmless() {
        let queue = RunQueue::new(1);
        let held = queue.submit("a").admitted().await.unwrap();
        let b = queue.submit("b");
        let c = queue.submit("c");
        assert!(queue.withdraw("b"));
        assert!(!queue.withdraw("b"));
        assert_eq!(b.admitted().await.unwrap_err(), Withdrawn);
        drop(held);
        let _c = c.admitted().await.unwrap();
        assert_eq!(queue.waiting(), 0);
    }

    #[tokio::test]
    async fn a_dropped_ticket_gives_its_turn_to_the_next() {
        let queue = RunQueue::new(1);
        let held = queue.submit("a").admitted().await.unwrap();
        drop(queue.submit("b"));
        let c = queue.submit("c");
        drop(held);
        let _c = c.admitted().await.unwrap();
        assert_eq!(queue.running(), 1);
    }
}
