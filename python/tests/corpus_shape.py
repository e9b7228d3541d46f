"""The JSON shape of every outcome and error of ``tether``, as tests/contract/README.md names them.

Python exposes some error details (an invalid input's problem, a snapshot error's kind, subject
and problem) only in the message, so those are read from the core's message text here.
"""

import re
from datetime import timedelta
from typing import Any

import tether

Json = Any

_PUBLISH_KINDS = {
    tether.PublishKind.ATTACHED: "Attached",
    tether.PublishKind.ALREADY_ATTACHED: "AlreadyAttached",
    tether.PublishKind.HANDED_OFF: "HandedOff",
    tether.PublishKind.MIGRATION_STARTED: "MigrationStarted",
}
_UNPUBLISH_KINDS = {
    tether.UnpublishKind.NOT_ATTACHED: "NotAttached",
    tether.UnpublishKind.DETACHED: "Detached",
    tether.UnpublishKind.MIGRATION_COMPLETED: "MigrationCompleted",
    tether.UnpublishKind.MIGRATION_ABORTED: "MigrationAborted",
}
_FIELDS = {"volume id": "volume", "node id": "node", "grace period": "grace_period",
           "migration timeout": "migration_timeout", "term": "term"}
# Message fragments of the core's `Problem` and `Inconsistency`, most specific first.
_PROBLEMS = [("is empty", "empty"), ("bytes long", "too_long"), ("NUL byte", "contains_nul"),
             ("not valid UTF-8", "not_utf8"), ("must be between", "out_of_range"), ("the limit is", "too_large")]
_INCONSISTENCIES = [
    ("RWO volume is attached to two nodes", "rwo_on_two_nodes"), ("at most 2 are possible", "too_many_nodes"),
    ("lists no node", "no_nodes"), ("listed twice in one attachment", "duplicate_node"),
    ("the missing node appears more than once", "duplicate_missing_node"),
    ("the volume appears more than once", "duplicate_volume"), ("has epoch 0", "attached_at_epoch_zero"),
    ("which cannot grow", "epoch_cannot_grow"), ("admission epochs", "bad_admissions"),
    ("ahead of the restoring clock", "future_time"), ("above the largest term", "term_too_large"),
    ("invalid ", "invalid"),
]


def secs(d: timedelta) -> float:
    return d.total_seconds()


def access(mode: tether.AccessMode, readonly: bool) -> str:
    return ("RWO" if mode == tether.AccessMode.RWO else "RWX") + ("-ro" if readonly else "")


def fence(f: tether.Fence) -> Json:
    return {"epoch": f.epoch, "access": access(f.access.mode, f.access.readonly),
            "nodes": [[a.node, a.epoch] for a in f.nodes]}


def published(o: tether.PublishOutcome) -> Json:
    v: Json = {"outcome": _PUBLISH_KINDS[o.kind], "epoch": o.epoch, "admitted": o.admitted, "fence": fence(o.fence)}
    if o.kind == tether.PublishKind.HANDED_OFF:
        v["from"] = o.from_node
    if o.kind == tether.PublishKind.MIGRATION_STARTED:
        assert o.timeout is not None
        v.update(source=o.source, timeout_s=secs(o.timeout))
    return v


def unpublished(o: tether.UnpublishOutcome) -> Json:
    kind = _UNPUBLISH_KINDS[o.kind]
    if kind == "NotAttached":
        return {"outcome": kind}
    assert o.fence is not None
    v: Json = {"outcome": kind, "epoch": o.epoch, "fence": fence(o.fence)}
    if kind == "Detached":
        v["nodes"] = list(o.nodes)
    else:
        v.update(source=o.source, target=o.target)
    if o.duration is not None:
        v["duration_s"] = secs(o.duration)
    return v


def stale(o: tether.StaleOutcome) -> Json:
    if not o.cleared:
        return {"outcome": "NotAttached"}
    assert o.fence is not None
    return {"outcome": "Cleared", "node": o.node, "remaining": o.remaining, "epoch": o.epoch, "fence": fence(o.fence)}


def reconciled(r: tether.ReconcileReport) -> Json:
    return {
        "cleared": sorted(({"volume": c.volume, "node": c.node, "epoch": c.epoch, "fence": fence(c.fence)}
                           for c in r.cleared), key=lambda c: (c["volume"], c["node"])),
        "pending": sorted(({"node": p.node, "volumes": p.volumes, "clears_in_s": secs(p.clears_in)}
                           for p in r.pending), key=lambda p: str(p["node"])),
        "returned": sorted(r.returned),
        "timed_out": sorted(({"volume": t.volume, "source": t.source, "target": t.target,
                              "elapsed_s": secs(t.elapsed), "timeout_s": secs(t.timeout)}
                             for t in r.timed_out_migrations), key=lambda t: str(t["volume"])),
    }


def _access_text(text: str) -> str:
    return text.replace(" read-only", "-ro")


def _first(table: list[tuple[str, str]], text: str) -> str:
    return next((code for fragment, code in table if fragment in text), f"unknown: {text}")


def _snapshot_error(text: str) -> Json:
    if text.startswith("snapshot is malformed"):
        return {"snapshot": "malformed"}
    if m := re.match(r"snapshot version (\d+) is not supported", text):
        return {"snapshot": "unknown_version", "found": int(m.group(1))}
    m = re.match(r'snapshot entry "(.*?)" is inconsistent: (.*)', text, re.S)
    assert m, text
    return {"snapshot": "inconsistent", "subject": m.group(1), "problem": _first(_INCONSISTENCIES, m.group(2))}


def error(e: tether.TetherError) -> Json:
    """The error's kind and details; a class this table lacks fails the scenario by its name."""
    text = str(e)
    if isinstance(e, tether.InvalidInput):
        return {"error": "InvalidInput", "field": _FIELDS.get(e.field, e.field), "problem": _first(_PROBLEMS, text)}
    if isinstance(e, tether.AttachmentConflict):
        return {"error": "Conflict", "nodes": list(e.attached_to)}
    if isinstance(e, tether.IncompatibleAttachment):
        return {"error": "Incompatible", "existing": _access_text(e.existing), "requested": _access_text(e.requested)}
    if isinstance(e, tether.MigrationLimit):
        return {"error": "MigrationLimit", "nodes": list(e.nodes)}
    if isinstance(e, tether.MigrationTimedOut):
        return {"error": "MigrationTimedOut", "nodes": list(e.nodes), "elapsed_s": secs(e.elapsed),
                "timeout_s": secs(e.timeout)}
    if isinstance(e, tether.EpochExhausted):
        return {"error": "EpochExhausted", "epoch": e.epoch}
    if isinstance(e, tether.VolumeStillAttached):
        return {"error": "StillAttached", "nodes": list(e.nodes)}
    if isinstance(e, tether.StaleFence):
        return {"error": "StaleFence", "epoch": e.epoch, "applied": e.applied}
    if isinstance(e, tether.NotAdmitted):
        return {"error": "NotAdmitted", "presented": e.presented, "admitted": e.admitted, "fence_epoch": e.fence_epoch}
    if isinstance(e, tether.SnapshotError):
        return {"error": "BadSnapshot", **_snapshot_error(text)}
    return {"error": type(e).__name__}
