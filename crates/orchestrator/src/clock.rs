//! Time comes from a [`Clock`], never straight from the system, so tests and the demo
//! can move it.

use std::sync::{Arc, Mutex};

use softstake_core::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, UTC.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to (tests, the demo's simulated days).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: Timestamp) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(t)))
    }

    /// Moves the clock to `t` (never backwards: earlier times are ignored).
    pub fn set(&self, t: Timestamp) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if t > *g {
            *g = t;
        }
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(t) = g.checked_add_secs(secs) {
            *g = t;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
