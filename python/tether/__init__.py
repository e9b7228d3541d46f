"""Tether's attachment engine from Python: decides whether a storage volume may attach to a node.

The rules are DESIGN.md's, enforced by the Rust engine in ``tether._tether``; this package
re-exports it. ``python -m tether audit`` checks a cluster's VolumeAttachments against them.
"""

from tether._tether import (
    MAX_ID_LEN,
    AccessMode,
    Attachment,
    AttachmentConflict,
    ClearedAttachment,
    DetachRecord,
    Engine,
    IncompatibleAttachment,
    InvalidInput,
    ManualClock,
    Migration,
    MigrationLimit,
    MigrationTimedOut,
    PendingNode,
    PublishKind,
    PublishOutcome,
    ReconcileReport,
    SnapshotError,
    StaleOutcome,
    TetherError,
    TimedOutMigration,
    UnpublishKind,
    UnpublishOutcome,
)

__all__ = [
    "MAX_ID_LEN",
    "AccessMode",
    "Attachment",
    "AttachmentConflict",
    "ClearedAttachment",
    "DetachRecord",
    "Engine",
    "IncompatibleAttachment",
    "InvalidInput",
    "ManualClock",
    "Migration",
    "MigrationLimit",
    "MigrationTimedOut",
    "PendingNode",
    "PublishKind",
    "PublishOutcome",
    "ReconcileReport",
    "SnapshotError",
    "StaleOutcome",
    "TetherError",
    "TimedOutMigration",
    "UnpublishKind",
    "UnpublishOutcome",
]
