//! How many bytes of request bodies `serve` holds at once (its transport, `http.rs`, reads
//! every body on the connection's own task, before a worker is taken). A body larger than the small forms takes
//! its declared length from two budgets, counted in KiB, before it is read: the address's share
//! and the server's whole budget. A request that finds either spent waits on its own task (it
//! costs no worker) until the bytes are given back or its body's deadline passes; the bytes are
//! given back when the request has been answered (the body is in memory until then).
//!
//! Sizes ([`Budget::for_server`]): the whole budget is twice the workers times the largest body a
//! route takes — one body in each worker's hands and one arriving behind it, so the workers never
//! wait on the network — and an address's share is two of the largest bodies, so the laptops of
//! an office behind one carrier-NAT address still send side by side, while one stranger trickling
//! large bodies under an enrolled device's id cannot take more than that.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budgets; shared by every connection of a server.
pub(super) struct Budget {
    all: Arc<Semaphore>,
    /// KiB in the whole budget, and in one address's share.
    total_kib: u32,
    share_kib: u32,
    /// Each address with a request holding or waiting for bytes; gone when it has none.
    addresses: Mutex<HashMap<IpAddr, Share>>,
}

struct Share {
    left: Arc<Semaphore>,
    requests: usize,
}

/// Bytes held for one request; dropping it gives them back.
pub(super) struct Held {
    _mine: OwnedSemaphorePermit,
    _all: OwnedSemaphorePermit,
    _request: Request,
}

/// A request of an address holding or waiting for bytes: its address's entry lives while it does.
struct Request {
    ip: IpAddr,
    budget: Arc<Budget>,
}

impl Drop for Request {
    fn drop(&mut self) {
        let mut m = self
            .budget
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(s) = m.get_mut(&self.ip) {
            s.requests = s.requests.saturating_sub(1);
            if s.requests == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// `bytes` in KiB, rounded up, at least 1, at most `u32::MAX`.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

impl Budget {
    pub(super) fn new(total_bytes: u64, share_bytes: u64) -> Budget {
        // A semaphore holds at most `Semaphore::MAX_PERMITS`; an absurd configuration is cut there.
        let cap = |b: u64| kib(b).min(u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX));
        let (total_kib, share_kib) = (cap(total_bytes), cap(share_bytes));
        Budget {
            all: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
            share_kib: share_kib.min(total_kib),
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// The server's budgets for bodies of at most `largest` bytes and `workers` workers (see the
    /// module's header).
    pub(super) fn for_server(largest: u64, workers: usize) -> Budget {
        let share = largest.saturating_mul(2);
        let total = share.saturating_mul(workers.max(1) as u64);
        Budget::new(total, share)
    }

    /// Takes `bytes` for a request from `ip`, waiting until `deadline` at most; `None` when the
    /// deadline passed first. The address's share is taken first, so the requests of an address
    /// waiting for it hold nothing of the whole budget.
    pub(super) async fn take(
        self: &Arc<Self>,
        ip: IpAddr,
        bytes: u64,
        deadline: tokio::time::Instant,
    ) -> Option<Held> {
        let want = kib(bytes).min(self.share_kib);
        let (request, left) = self.enter(ip);
        let mine = tokio::time::timeout_at(deadline, left.acquire_many_owned(want))
            .await
            .ok()?
            .ok()?;
        let all = tokio::time::timeout_at(deadline, Arc::clone(&self.all).acquire_many_owned(want))
            .await
            .ok()?
            .ok()?;
        Some(Held {
            _mine: mine,
            _all: all,
            _request: request,
        })
    }

    fn enter(self: &Arc<Self>, ip: IpAddr) -> (Request, Arc<Semaphore>) {
        let mut m = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        let share = m.entry(ip).or_insert_with(|| Share {
            left: Arc::new(Semaphore::new(self.share_kib as usize)),
            requests: 0,
        });
        share.requests += 1;
        let left = Arc::clone(&share.left);
        let request = Request {
            ip,
            budget: Arc::clone(self),
        };
        (request, left)
    }

    /// KiB free in the whole budget (for tests and the log).
    pub(super) fn free_kib(&self) -> usize {
        self.all.available_permits()
    }

    /// KiB in the whole budget.
    pub(super) fn total_kib(&self) -> u32 {
        self.total_kib
    }

    #[cfg(test)]
    fn addresses_tracked(&self) -> usize {
        self.addresses.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(200)
    }

    /// Past its share an address waits — and is refused at its deadline — while another address
    /// is served; once the first request is answered, its bytes serve the next.
    #[test]
    fn an_address_cannot_take_more_than_its_share() {
        rt().block_on(async {
            let b = Arc::new(Budget::new(100 * 1024, 40 * 1024));
            let one = b.take(ip(1), 30 * 1024, soon()).await.unwrap();
            assert!(b.take(ip(1), 20 * 1024, soon()).await.is_none());
            let other = b.take(ip(2), 40 * 1024, soon()).await.unwrap();
            assert_eq!(b.free_kib(), 30);
            drop(one);
            assert!(b.take(ip(1), 20 * 1024, soon()).await.is_some());
            drop(other);
            assert_eq!(b.free_kib(), 100);
            assert_eq!(
                b.addresses_tracked(),
                0,
                "no address is kept once it holds nothing"
            );
        });
    }

    /// The whole budget bounds every address together, and a waiting request is served as soon as
    /// bytes are given back.
    #[test]
    fn the_whole_budget_bounds_every_address() {
        rt().block_on(async {
            let b = Arc::new(Budget::new(64 * 1024, 32 * 1024));
            let mut held: Vec<Held> = vec![];
            for i in [1, 2] {
                held.push(b.take(ip(i), 32 * 1024, soon()).await.unwrap());
            }
            assert_eq!(b.free_kib(), 0);
            assert!(b.take(ip(3), 1, soon()).await.is_none());
            let waiting = {
                let b = Arc::clone(&b);
                tokio::spawn(async move {
                    let far = tokio::time::Instant::now() + Duration::from_secs(60);
                    b.take(ip(3), 10 * 1024, far).await.is_some()
                })
            };
            tokio::task::yield_now().await;
            drop(held);
            assert!(waiting.await.unwrap());
            assert_eq!(b.free_kib(), 64);
        });
    }

    #[test]
    fn sizes_follow_the_workers_and_the_largest_body() {
        let b = Budget::for_server(8 * 1024 * 1024, 2);
        assert_eq!(b.total_kib(), 4 * 8 * 1024);
        assert_eq!(b.share_kib, 2 * 8 * 1024);
        // Never a share larger than the whole, and absurd sizes are cut, not overflowed.
        let one = Budget::for_server(1024, 1);
        assert_eq!((one.total_kib(), one.share_kib), (2, 2));
        let huge = Budget::for_server(u64::MAX, 256);
        assert!(huge.share_kib <= huge.total_kib);
    }
}
