//! Lock-free outcome counters, read by any front end.
//!
//! Every count is split into stripes, one per thread (threads beyond [`STRIPES`] share), each
//! stripe on cache lines of its own: two threads counting the same outcome write different
//! lines, so counting adds no shared write to the write path. A reading sums the stripes.
//! The one gauge (`active_migrations`) moves both ways, so it is never striped: a sum of
//! stripes read while one thread raises it and another lowers it could dip below zero.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

/// How many stripes the counts are split into: enough that the threads of a front end (a
/// driver's runtime workers, an FFI caller's pool) rarely share one. Two under loom, whose
/// models run two threads and explore every load of a reading.
#[cfg(not(loom))]
pub(crate) const STRIPES: usize = 16;
#[cfg(loom)]
pub(crate) const STRIPES: usize = 2;

/// One atomic count. Padding is the job of whoever holds it: a whole stripe of counts is
/// written by one thread, so its counts share lines with each other only.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

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

/// The stripe the calling thread counts in: threads take stripes in turn as they first count.
fn stripe_of_this_thread() -> usize {
    // Not engine state and never loom-modelled: which stripe a thread takes changes no total.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
    }
    STRIPE.with(|s| *s)
}

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* ; $(#[$gauge_doc:meta])* gauge $gauge:ident ; $( $(#[$doc2:meta])* $name2:ident ),* $(,)?) => {
        /// One thread's stripe of every count.
        #[derive(Debug, Default)]
        pub(crate) struct Stripe { $( pub(crate) $name: Counter, )* $( pub(crate) $name2: Counter, )* }

        /// The engine's live counters: the counts in stripes, the gauge on its own line.
        #[derive(Debug)]
        pub(crate) struct Counters {
            stripes: Box<[CachePadded<Stripe>]>,
            $(#[$gauge_doc])*
            pub(crate) $gauge: CachePadded<Counter>,
        }

        /// A reading of every counter. Each field is exact; fields read while other threads
        /// run may come from slightly different moments.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct Stats {
            $( $(#[$doc])* pub $name: u64, )*
            $(#[$gauge_doc])*
            pub $gauge: u64,
            $( $(#[$doc2])* pub $name2: u64, )*
        }

        impl Counters {
            /// Sums each count over the stripes (wrapping, as the increments do).
            pub(crate) fn read(&self) -> Stats {
                let mut s = Stats { $gauge: self.$gauge.get(), ..Stats::default() };
                for stripe in &*self.stripes {
                    $( s.$name = s.$name.wrapping_add(stripe.$name.get()); )*
                    $( s.$name2 = s.$name2.wrapping_add(stripe.$name2.get()); )*
                }
                s
            }
        }

        impl Stats {
            /// Every counter as (name, value), in declaration order: for exporters.
            pub fn fields(&self) -> [(&'static str, u64); counters!(@count $($name)* $gauge $($name2)*)] {
                [ $( (stringify!($name), self.$name), )* (stringify!($gauge), self.$gauge), $( (stringify!($name2), self.$name2), )* ]
            }
        }
    };
    (@count $($name:ident)*) => { 0 $( + counters!(@one $name) )* };
    (@one $name:ident) => { 1 };
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| CachePadded::default()).collect(),
            active_migrations: CachePadded::default(),
        }
    }
}

impl Counters {
    /// The calling thread's stripe: every count except the gauge is raised here.
    pub(crate) fn local(&self) -> &Stripe {
        &self.stripes[stripe_of_this_thread()]
    }

    /// Stripe `i` (modulo [`STRIPES`]): for the loom models, which run every thread on one.
    #[cfg(all(test, loom))]
    pub(crate) fn stripe(&self, i: usize) -> &Stripe {
        &self.stripes[i % STRIPES]
    }
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
    invalid_input;
    /// Volumes on two nodes right now (a gauge, not a count).
    gauge active_migrations;
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
