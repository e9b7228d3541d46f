//! Lock-free outcome counters, one padded cache line each, read by any front end.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

/// A monotonically increasing count, on a cache line of its own so that two hot counters
/// never share one.
#[derive(Debug, Default)]
pub(crate) struct Counter(CachePadded<AtomicU64>);

impl Counter {
    pub(crate) fn incr(&self) {
        // Relaxed: a counter orders nothing; its own modification order is all readers need.
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn decr(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// The engine's live counters.
        #[derive(Debug, Default)]
        pub(crate) struct Counters { $( pub(crate) $name: Counter, )* }

        /// A reading of every counter. Each field is exact; fields read while other threads
        /// run may come from slightly different moments.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct Stats { $( $(#[$doc])* pub $name: u64, )* }

        impl Counters {
            pub(crate) fn read(&self) -> Stats {
                Stats { $( $name: self.$name.get(), )* }
            }
        }

        impl Stats {
            /// Every counter as (name, value), in declaration order: for exporters.
            pub fn fields(&self) -> [(&'static str, u64); counters!(@count $($name)*)] {
                [ $( (stringify!($name), self.$name), )* ]
            }
        }
    };
    (@count $($name:ident)*) => { 0 $( + counters!(@one $name) )* };
    (@one $name:ident) => { 1 };
}

counters! {
    /// Publishes that attached a volume that was not attached.
    attached,
    /// Idempotent publishes: same node, same access.
    already_attached,
    /// Publishes that took an RWO volume over from a late re-attach (grace period used).
    handed_off,
    /// Publishes that put an RWX volume on a second node.
    migrations_started,
    /// Publishes refused because another node holds the volume.
    conflicts,
    /// Publishes refused because the same node holds the volume with other access.
    incompatible,
    /// Publishes refused because an RWX volume was already on two nodes.
    migration_limit,
    /// Publishes refused because the volume's migration was past its timeout.
    migration_timed_out,
    /// Unpublishes that left the volume on no node.
    detached,
    /// Unpublishes that found nothing to do.
    not_attached,
    /// Unpublishes of a migration's source.
    migrations_completed,
    /// Unpublishes of a migration's target.
    migrations_aborted,
    /// Migrations reported past their timeout by reconcile (once each).
    migrations_timed_out,
    /// Attachments removed by compare-and-clear (stale nodes).
    stale_cleared,
    /// Reconcile passes run.
    reconciles,
    /// Calls refused for invalid input.
    invalid_input,
    /// Volumes on two nodes right now (a gauge, not a count).
    active_migrations,
    /// Migrations ended by a full detach (an unpublish naming no node).
    migrations_detached,
    /// Migrations ended by a compare-and-clear of one side (a stale node).
    migrations_cleared,
    /// Volume epochs raised by a re-fence.
    refenced,
    /// Volume records dropped by `forget`.
    forgotten,
    /// Changes refused because the volume's epoch could not grow.
    epoch_exhausted,
}
