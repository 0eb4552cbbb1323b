//! Singletons among several servers on one database: a task that must run on one server at a
//! time (the scheduler, which must fire each due time once; the bus's deliveries) runs only on
//! the holder of its lease. The holder renews it when half its time is left; when the holder
//! stops, another server takes it once it lapses.

use crate::Engine;
use tracing::{info, warn};

/// One singleton's lease, as this server knows it.
#[derive(Debug)]
pub struct Singleton {
    name: &'static str,
    /// Until when this server holds it (0: it does not).
    held_until_ms: i64,
}

impl Singleton {
    pub fn new(name: &'static str) -> Singleton {
        Singleton {
            name,
            held_until_ms: 0,
        }
    }

    /// Whether this server holds the lease now: taken or renewed in the store when it is not
    /// held or has less than half its time left, else known without asking.
    pub async fn held(&mut self, engine: &Engine) -> bool {
        let now = engine.clock_now();
        let (owner, ttl) = engine.lease_holder();
        if now < self.held_until_ms - ttl / 2 {
            return true;
        }
        let was = self.held_until_ms > now;
        match engine
            .store()
            .try_lease(self.name, owner, now + ttl, now)
            .await
        {
            Ok(true) => {
                if !was {
                    info!(lease = self.name, "this server runs the singleton now");
                }
                self.held_until_ms = now + ttl;
                true
            }
            Ok(false) => {
                if was {
                    warn!(lease = self.name, "another server holds the singleton now");
                }
                self.held_until_ms = 0;
                false
            }
            Err(e) => {
                warn!(lease = self.name, cause = %e, "cannot renew the singleton's lease");
                // Held for what is left of it, no longer.
                self.held_until_ms > now
            }
        }
    }
}
