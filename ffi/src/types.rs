//! The C-visible value types: enums, node names, results, records, settings and counters, and
//! their conversions from the engine's own types.

use std::time::{Duration, SystemTime};

use crate::fence::tether_fence;
use crate::status::tether_status;
use tether_core::{duration_to_nanos, AccessMode, Attachment, Config, DetachRecord, Nodes, Stats};

/// The longest identifier (volume or node) the engine accepts, in bytes.
pub const TETHER_MAX_ID_LEN: usize = 128;
/// The size of `tether_node_name.bytes`: the longest node name plus its terminating NUL.
pub const TETHER_NODE_NAME_CAP: usize = 129;

const _: () = assert!(TETHER_MAX_ID_LEN == tether_core::MAX_ID_LEN && TETHER_NODE_NAME_CAP == TETHER_MAX_ID_LEN + 1);

/// Saturating nanoseconds of a duration.
pub(crate) fn nanos(d: Duration) -> u64 {
    duration_to_nanos(d)
}

/// Nanoseconds since the Unix epoch; 0 for a time before it.
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, duration_to_nanos)
}

/// A borrowed identifier: `len` bytes of UTF-8 at `ptr`, no terminator needed. `ptr` may be
/// NULL only when `len` is 0.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct tether_str {
    pub ptr: *const u8,
    pub len: usize,
}

/// Access mode of an attachment. Passed into calls as a `uint32_t`; any other value is
/// refused with `TETHER_INVALID_ARGUMENT`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u32)]
pub enum tether_access_mode {
    /// Single-node writer (ReadWriteOnce): at most one node.
    #[default]
    TETHER_RWO = 0,
    /// Multi-node (ReadWriteMany): a second node only during a live migration.
    TETHER_RWX = 1,
}

impl From<AccessMode> for tether_access_mode {
    fn from(m: AccessMode) -> Self {
        match m {
            AccessMode::Rwo => Self::TETHER_RWO,
            AccessMode::Rwx => Self::TETHER_RWX,
        }
    }
}

/// What a successful publish did. Values start at 1 so a zeroed result is never a valid one.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum tether_published {
    /// The volume was not attached; now it is, to this node only.
    TETHER_PUBLISHED_ATTACHED = 1,
    /// Already attached to this node with this access: nothing changed.
    TETHER_PUBLISHED_ALREADY_ATTACHED = 2,
    /// An RWO attachment on `other_node` was a late re-attach inside the grace period; the
    /// volume now belongs to this node alone.
    TETHER_PUBLISHED_HANDED_OFF = 3,
    /// An RWX volume on `other_node` (the source) is now also on this node.
    TETHER_PUBLISHED_MIGRATION_STARTED = 4,
}

/// What an unpublish did; every value is a success (unpublish is idempotent).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum tether_unpublished {
    /// The volume was not attached to that node (or at all): nothing changed.
    TETHER_UNPUBLISHED_NOT_ATTACHED = 1,
    /// The volume is attached nowhere now; a detach record was written.
    TETHER_UNPUBLISHED_DETACHED = 2,
    /// The migration's source left; the target is now the only node.
    TETHER_UNPUBLISHED_MIGRATION_COMPLETED = 3,
    /// The migration's target left; the source keeps the volume.
    TETHER_UNPUBLISHED_MIGRATION_ABORTED = 4,
}

/// What a compare-and-clear of a stale attachment did.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum tether_stale {
    /// The volume was not (or no longer) attached to that node: nothing changed.
    TETHER_STALE_NOT_ATTACHED = 1,
    /// The node was removed from the volume.
    TETHER_STALE_CLEARED = 2,
}

/// A node name held by value: `len` bytes of UTF-8 followed by a NUL, so C can print `bytes`
/// directly. `len` is 0 when the slot is unused.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_node_name {
    pub len: usize,
    pub bytes: [u8; TETHER_NODE_NAME_CAP],
}

impl Default for tether_node_name {
    fn default() -> Self {
        Self { len: 0, bytes: [0; TETHER_NODE_NAME_CAP] }
    }
}

impl tether_node_name {
    /// Copies `name` (see [`clipped`]).
    #[inline]
    pub(crate) fn from_str(name: &str) -> Self {
        let name = clipped(name);
        let mut out = Self { len: name.len(), ..Self::default() };
        out.bytes[..name.len()].copy_from_slice(name.as_bytes());
        out
    }

    /// The name as text (for Rust callers and tests).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len.min(TETHER_MAX_ID_LEN)]).unwrap_or("")
    }
}

/// `name`, cut at a character boundary to at most `TETHER_MAX_ID_LEN` bytes (engine names
/// never exceed it; this only guarantees the copy can never overflow).
pub(crate) fn clipped(name: &str) -> &str {
    let mut end = name.len().min(TETHER_MAX_ID_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Up to two node names, primary first, and how many are set.
#[inline]
fn node_pair(nodes: &Nodes) -> ([tether_node_name; 2], usize) {
    let mut out = [tether_node_name::default(); 2];
    for (slot, name) in out.iter_mut().zip(nodes.iter()) {
        *slot = tether_node_name::from_str(name);
    }
    (out, nodes.len())
}

/// Engine settings. A grace period above one hour is refused; the migration timeout is clamped
/// into 30 s ..= 1 h.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_config {
    pub grace_period_ns: u64,
    pub default_migration_timeout_ns: u64,
}

impl From<Config> for tether_config {
    fn from(c: Config) -> Self {
        Self {
            grace_period_ns: nanos(c.grace_period),
            default_migration_timeout_ns: nanos(c.default_migration_timeout),
        }
    }
}

impl From<tether_config> for Config {
    fn from(c: tether_config) -> Self {
        Self {
            grace_period: Duration::from_nanos(c.grace_period_ns),
            default_migration_timeout: Duration::from_nanos(c.default_migration_timeout_ns),
        }
    }
}

/// A successful publish.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_publish_result {
    pub kind: tether_published,
    /// The volume's epoch (fencing token) after the publish.
    pub epoch: u64,
    /// HANDED_OFF: the node that lost the volume. MIGRATION_STARTED: the migration's source.
    /// Otherwise empty (len 0).
    pub other_node: tether_node_name,
    /// MIGRATION_STARTED: the effective (clamped) migration timeout. Otherwise 0.
    pub migration_timeout_ns: u64,
    /// This node's admission epoch: the epoch of the change that admitted it, the same on an
    /// idempotent re-publish (ALREADY_ATTACHED). The node's I/O session must present at least
    /// this.
    pub admitted_epoch: u64,
    /// The volume's fence after the publish: hand it to the storage target before
    /// acknowledging the publish.
    pub fence: tether_fence,
}

/// A successful unpublish.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_unpublish_result {
    pub kind: tether_unpublished,
    /// The volume's epoch after the call; 0 for NOT_ATTACHED (nothing changed).
    pub epoch: u64,
    /// DETACHED: the nodes detached, primary first. MIGRATION_COMPLETED and MIGRATION_ABORTED:
    /// `nodes[0]` is the source, `nodes[1]` the target. NOT_ATTACHED: none.
    pub nodes: [tether_node_name; 2],
    pub node_count: usize,
    /// MIGRATION_COMPLETED: how long the migration ran. Otherwise 0.
    pub duration_ns: u64,
    /// The volume's fence after the change (DETACHED: nobody; MIGRATION_COMPLETED: only the
    /// target; MIGRATION_ABORTED: only the source). NOT_ATTACHED: zeroed (epoch 0, no node),
    /// since nothing changed and no fence is owed.
    pub fence: tether_fence,
}

/// A successful compare-and-clear.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_stale_result {
    pub kind: tether_stale,
    /// CLEARED: the volume's epoch after the clear. NOT_ATTACHED: 0.
    pub epoch: u64,
    /// CLEARED: the node still attached (a migration's other side), or empty (len 0).
    pub remaining: tether_node_name,
    /// CLEARED: the volume's fence after the clear. NOT_ATTACHED: zeroed (epoch 0, no node).
    pub fence: tether_fence,
}

/// A volume's attachment as read at one moment.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_attachment {
    pub mode: tether_access_mode,
    pub readonly: bool,
    pub epoch: u64,
    /// The nodes, primary first; `nodes[1]` is the migration target when `node_count` is 2.
    pub nodes: [tether_node_name; 2],
    pub node_count: usize,
    /// When the node set last changed, in nanoseconds since the Unix epoch.
    pub since_unix_ns: u64,
    /// Whether a migration is in progress (the volume is on two nodes).
    pub migrating: bool,
    /// While migrating: how long the migration has run, and its timeout. Otherwise 0.
    pub migration_elapsed_ns: u64,
    pub migration_timeout_ns: u64,
    /// The admission epochs of `nodes[0..node_count]`; 0 in an unused slot.
    pub admitted: [u64; 2],
}

impl From<&Attachment> for tether_attachment {
    fn from(a: &Attachment) -> Self {
        let (nodes, node_count) = node_pair(&a.nodes);
        Self {
            mode: a.access.mode.into(),
            readonly: a.access.readonly,
            epoch: a.epoch,
            nodes,
            node_count,
            since_unix_ns: unix_nanos(a.since),
            migrating: a.migration.is_some(),
            migration_elapsed_ns: a.migration.map_or(0, |m| nanos(m.elapsed)),
            migration_timeout_ns: a.migration.map_or(0, |m| nanos(m.timeout)),
            admitted: [a.admitted.0, a.admitted.1.unwrap_or(0)],
        }
    }
}

/// A volume's last full detach.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_detach_record {
    /// The node it was detached from.
    pub node: tether_node_name,
    /// When, in nanoseconds since the Unix epoch.
    pub at_unix_ns: u64,
    /// How long ago, on the engine's monotonic clock.
    pub age_ns: u64,
}

impl From<&DetachRecord> for tether_detach_record {
    fn from(d: &DetachRecord) -> Self {
        Self { node: tether_node_name::from_str(&d.node), at_unix_ns: unix_nanos(d.at), age_ns: nanos(d.age) }
    }
}

/// Details of the calling thread's last failure, for callers that act on it (for example, to
/// name the node that holds a volume) without parsing the message.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct tether_error_info {
    /// The status the failing call returned.
    pub status: tether_status,
    /// CONFLICT, STILL_ATTACHED: the nodes holding the volume. MIGRATION_LIMIT,
    /// MIGRATION_TIMED_OUT: the migration's nodes (source first). INCOMPATIBLE: the requesting
    /// node. NOT_ADMITTED: the node refused. Otherwise none.
    pub nodes: [tether_node_name; 2],
    pub node_count: usize,
    /// INCOMPATIBLE: the access the volume is attached with. Otherwise RWO and false.
    pub existing_mode: tether_access_mode,
    pub existing_readonly: bool,
    /// MIGRATION_TIMED_OUT: how long the migration has run, and its timeout. Otherwise 0.
    pub elapsed_ns: u64,
    pub timeout_ns: u64,
    /// EPOCH_EXHAUSTED: the volume's epoch. STALE_FENCE: the refused fence's epoch.
    /// NOT_ADMITTED: the fence's epoch. Otherwise 0.
    pub epoch: u64,
    /// STALE_FENCE: the epoch already applied. Otherwise 0.
    pub applied_epoch: u64,
    /// NOT_ADMITTED: the epoch the node presented, and its admission epoch in the fence (0 when
    /// the fence does not admit it). Otherwise 0.
    pub presented_epoch: u64,
    pub admitted_epoch: u64,
}

impl Default for tether_error_info {
    fn default() -> Self {
        Self {
            status: tether_status::TETHER_OK,
            nodes: [tether_node_name::default(); 2],
            node_count: 0,
            existing_mode: tether_access_mode::TETHER_RWO,
            existing_readonly: false,
            elapsed_ns: 0,
            timeout_ns: 0,
            epoch: 0,
            applied_epoch: 0,
            presented_epoch: 0,
            admitted_epoch: 0,
        }
    }
}

/// A reading of the engine's counters; see the engine's documentation for each one.
/// Each field is exact; fields read while other threads run may come from slightly different
/// moments. `active_migrations` is a gauge, every other field a count since the engine began.
/// Fields are only ever appended.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct tether_stats {
    pub attached: u64,
    pub already_attached: u64,
    pub handed_off: u64,
    pub migrations_started: u64,
    pub conflicts: u64,
    pub incompatible: u64,
    pub migration_limit: u64,
    pub migration_timed_out: u64,
    pub detached: u64,
    pub not_attached: u64,
    pub migrations_completed: u64,
    pub migrations_aborted: u64,
    pub migrations_timed_out: u64,
    pub stale_cleared: u64,
    pub reconciles: u64,
    pub invalid_input: u64,
    pub active_migrations: u64,
    /// Migrations ended by a full detach (an unpublish naming no node).
    pub migrations_detached: u64,
    /// Migrations ended by a compare-and-clear of one side.
    pub migrations_cleared: u64,
    /// Volume epochs raised by a re-fence.
    pub refenced: u64,
    /// Volume records dropped by `tether_engine_forget`.
    pub forgotten: u64,
    /// Changes refused because the volume's epoch could not grow.
    pub epoch_exhausted: u64,
}

impl From<Stats> for tether_stats {
    fn from(s: Stats) -> Self {
        // Destructured without `..`: a counter added to the engine fails this build until it
        // is added here (and so to the header) too.
        let Stats {
            attached,
            already_attached,
            handed_off,
            migrations_started,
            conflicts,
            incompatible,
            migration_limit,
            migration_timed_out,
            detached,
            not_attached,
            migrations_completed,
            migrations_aborted,
            migrations_timed_out,
            stale_cleared,
            reconciles,
            invalid_input,
            active_migrations,
            migrations_detached,
            migrations_cleared,
            refenced,
            forgotten,
            epoch_exhausted,
        } = s;
        Self {
            attached,
            already_attached,
            handed_off,
            migrations_started,
            conflicts,
            incompatible,
            migration_limit,
            migration_timed_out,
            detached,
            not_attached,
            migrations_completed,
            migrations_aborted,
            migrations_timed_out,
            stale_cleared,
            reconciles,
            invalid_input,
            active_migrations,
            migrations_detached,
            migrations_cleared,
            refenced,
            forgotten,
            epoch_exhausted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{clipped, tether_node_name, TETHER_MAX_ID_LEN};

    #[test]
    fn names_are_cut_at_a_character_boundary_and_stay_nul_terminated() {
        let long = "é".repeat(TETHER_MAX_ID_LEN); // 2 bytes each: 256 bytes
        let cut = clipped(&long);
        assert_eq!((cut.len(), cut.chars().count()), (TETHER_MAX_ID_LEN, TETHER_MAX_ID_LEN / 2));
        let odd = format!("a{long}");
        assert_eq!(clipped(&odd).len(), TETHER_MAX_ID_LEN - 1, "a cut inside 'é' backs off one byte");

        let name = tether_node_name::from_str("node-a");
        assert_eq!((name.as_str(), name.bytes[name.len]), ("node-a", 0));
        let full = tether_node_name::from_str(&"x".repeat(TETHER_MAX_ID_LEN));
        assert_eq!((full.len, full.bytes[TETHER_MAX_ID_LEN]), (TETHER_MAX_ID_LEN, 0));
    }
}
