//! The per-volume in-flight guard: a second operation on a volume while one runs is ABORTED,
//! as the CSI specification asks, instead of queueing behind it.

use std::sync::Arc;

use dashmap::DashSet;

use crate::status::DriverError;

/// The keys (volume ids, or create names) with an operation running.
#[derive(Debug, Default, Clone)]
pub struct InFlight {
    busy: Arc<DashSet<String>>,
}

/// Held while an operation runs; dropping it frees the key.
#[derive(Debug)]
pub struct Guard {
    busy: Arc<DashSet<String>>,
    key: String,
}

impl InFlight {
    /// Claims `key`, or refuses with ABORTED if an operation on it is running.
    pub fn begin(&self, key: &str) -> Result<Guard, DriverError> {
        if self.busy.insert(key.to_owned()) {
            Ok(Guard { busy: Arc::clone(&self.busy), key: key.to_owned() })
        } else {
            Err(DriverError::Busy(key.to_owned()))
        }
    }

    /// How many operations are running.
    pub fn len(&self) -> usize {
        self.busy.len()
    }

    pub fn is_empty(&self) -> bool {
        self.busy.is_empty()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.busy.remove(&self.key);
    }
}
