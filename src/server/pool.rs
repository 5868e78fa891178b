//! The worker threads of `serve`, each with its own store handle (a SQLite connection, or a
//! PostgreSQL client), that run the blocking part of each request.
use super::store::Store;
use std::sync::{Arc, Mutex};

pub(super) type Job = Box<dyn FnOnce(&mut Store) + Send>;

/// The worker threads, each with its own store handle. They are plain threads outside the
/// runtime: the synchronous PostgreSQL client runs a runtime of its own, which cannot start
/// inside another.
///
/// A job goes to the worker that became free last (a stack, not a queue): a district's usual
/// load — a few laptops syncing one batch at a time — keeps reusing the same one or two workers,
/// so only their connections' SQLite page caches and their stacks are ever warm, and the
/// server's memory follows the requests actually in flight rather than `server.threads`.
pub(super) struct Pool {
    /// Each worker's own channel.
    workers: Vec<std::sync::mpsc::Sender<Job>>,
    /// The free workers, the one freed last on top.
    idle: Arc<Mutex<Vec<usize>>>,
    /// One permit per free worker: a job is handed over only when a worker is free.
    free: Arc<tokio::sync::Semaphore>,
}

impl Pool {
    pub(super) fn start(stores: Vec<Store>) -> Pool {
        let free = Arc::new(tokio::sync::Semaphore::new(stores.len()));
        // Worker 0 on top: the first job goes to it.
        let idle = Arc::new(Mutex::new((0..stores.len()).rev().collect::<Vec<_>>()));
        let mut workers = Vec::with_capacity(stores.len());
        for (i, mut store) in stores.into_iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::channel::<Job>();
            workers.push(tx);
            let _ = std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        // A job that panics (a bug; release builds abort) fails its own request
                        // only: the worker lives on, back on the stack (Turn), its transaction
                        // rolled back by the unwinding.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            job(&mut store)
                        }));
                    }
                });
        }
        Pool {
            workers,
            idle,
            free,
        }
    }

    /// Runs `work` with a store handle on a worker thread (waiting for a free one).
    pub(super) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> Option<T> {
        let permit = Arc::clone(&self.free).acquire_owned().await.ok()?;
        // A permit is held, so a worker is on the stack.
        let worker = self.idle.lock().ok()?.pop()?;
        let turn = Turn {
            idle: Arc::clone(&self.idle),
            worker,
            _permit: permit,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |store| {
            let out = work(store);
            // Free before answering, so the caller's next job finds this worker on top.
            drop(turn);
            let _ = tx.send(out);
        });
        self.workers[worker].send(job).ok()?;
        rx.await.ok()
    }
}

/// A worker's turn at a job: when it ends — the job done, panicked or never run — the worker
/// goes back on top of the stack, then its permit is given back (fields drop after `drop`).
struct Turn {
    idle: Arc<Mutex<Vec<usize>>>,
    worker: usize,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(self.worker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request at a time always finds the same worker; two at once use two.
    #[test]
    fn the_worker_freed_last_takes_the_next_job() {
        let dir = tempfile::tempdir().unwrap();
        let stores = (0..4)
            .map(|_| Store::open(&dir.path().join("d.db")).unwrap())
            .collect();
        let pool = Arc::new(Pool::start(stores));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let name = || std::thread::current().name().unwrap_or("").to_string();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            seen.insert(rt.block_on(pool.run(move |_| name())).unwrap());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["worker-0"]);
        // A job that panics fails alone; its worker takes the next job.
        assert_eq!(
            rt.block_on(pool.run(|_| -> String { panic!("a bug") })),
            None
        );
        assert_eq!(rt.block_on(pool.run(move |_| name())).unwrap(), "worker-0");
        // Two jobs in flight at once (each waits for the other to start): two workers.
        let gate = Arc::new(std::sync::Barrier::new(2));
        let both = rt.block_on(async {
            let job = |gate: Arc<std::sync::Barrier>| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    pool.run(move |_| {
                        gate.wait();
                        name()
                    })
                    .await
                })
            };
            let (a, b) = (job(Arc::clone(&gate)), job(Arc::clone(&gate)));
            (a.await.unwrap().unwrap(), b.await.unwrap().unwrap())
        });
        let mut both = [both.0, both.1];
        both.sort();
        assert_eq!(both, ["worker-0", "worker-1"]);
    }
}
