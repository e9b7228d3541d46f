"""The pure-Python baseline: DESIGN.md's RWO rows (and the grace check) over a dict and one lock.

Faithful to the contract for RWO volumes: idempotent re-publish, incompatible access, handoff
of a late re-attach inside the grace period, conflict, detach records, epochs under a term
(`max(epoch + 1, term << 32)`), counters. Like the engine's outcomes, a result carries what the
contract says a front end gets back: the volume's epoch, the node's admission epoch and the
fence after the change, `(epoch, readonly, ((node, admitted), ...))`, as plain tuples.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


# A fence as the baseline hands it back: (epoch, readonly, ((node, admitted epoch), ...)).
_Fence = tuple[int, bool, tuple[tuple[str, int], ...]]


class Conflict(Exception):
    pass


class Incompatible(Exception):
    pass


@dataclass
class _Record:
    node: str | None = None
    readonly: bool = False
    epoch: int = 0
    admitted: int = 0
    detached_at: int | None = None
    detached_from: str | None = None


@dataclass
class DictEngine:
    grace_ns: int = 30_000_000_000
    term: int = 0
    _volumes: dict[str, _Record] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("attached", "already_attached", "handed_off", "conflicts", "incompatible", "detached", "not_attached"), 0))

    def publish(self, volume: str, node: str, readonly: bool = False) -> tuple[str, int, int, _Fence]:
        _check(volume)
        _check(node)
        now = time.monotonic_ns()
        with self._lock:
            rec = self._volumes.setdefault(volume, _Record())
            if rec.node is None:
                kind = "attached"
            elif rec.node == node:
                if rec.readonly != readonly:
                    self.counts["incompatible"] += 1
                    raise Incompatible(volume)
                self.counts["already_attached"] += 1
                return "already_attached", rec.epoch, rec.admitted, (rec.epoch, readonly, ((node, rec.admitted),))
            elif rec.detached_from == rec.node and rec.detached_at is not None and now - rec.detached_at < self.grace_ns:
                kind = "handed_off"
                rec.detached_at = None
            else:
                self.counts["conflicts"] += 1
                raise Conflict(volume)
            epoch, floor = rec.epoch + 1, self.term << 32
            epoch = epoch if epoch > floor else floor
            rec.node, rec.readonly, rec.epoch, rec.admitted = node, readonly, epoch, epoch
            self.counts[kind] += 1
            return kind, epoch, epoch, (epoch, readonly, ((node, epoch),))

    def unpublish(self, volume: str, node: str | None = None) -> tuple[str, int, tuple[str, ...], _Fence]:
        _check(volume)
        if node is not None:
            _check(node)
        now = time.monotonic_ns()
        with self._lock:
            rec = self._volumes.get(volume)
            if rec is None or rec.node is None or (node is not None and rec.node != node):
                self.counts["not_attached"] += 1
                if rec is None:
                    return "not_attached", 0, (), (0, False, ())
                held = ((rec.node, rec.admitted),) if rec.node is not None else ()
                return "not_attached", rec.epoch, (), (rec.epoch, rec.readonly, held)
            epoch, floor = rec.epoch + 1, self.term << 32
            epoch = epoch if epoch > floor else floor
            left = rec.node
            rec.detached_from, rec.detached_at, rec.node, rec.epoch = left, now, None, epoch
            self.counts["detached"] += 1
            return "detached", epoch, (left,), (epoch, False, ())

    def is_within_grace_period(self, volume: str) -> bool:
        _check(volume)
        with self._lock:
            rec = self._volumes.get(volume)
            at = rec.detached_at if rec else None
        return at is not None and time.monotonic_ns() - at < self.grace_ns


def _check(ident: str) -> None:
    if not ident or len(ident.encode()) > 128 or "\0" in ident:
        raise ValueError(f"invalid id {ident!r}")
