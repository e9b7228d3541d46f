"""Reading ``kubectl get volumeattachments,nodes,pv -o json`` output into plain records.

Only the fields the audit needs are read; each is checked for presence and type, and a
malformed document raises :class:`InputError` with a one-line message naming the item and
the field (``item 3 (VolumeAttachment "va-1"): spec.nodeName: missing``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tether._tether import AccessMode


class InputError(Exception):
    """The input is not the document the audit reads; the message names what and where."""


@dataclass(frozen=True)
class VolumeAttachment:
    """A storage.k8s.io/v1 VolumeAttachment: ``volume`` is the PersistentVolume's name."""

    name: str
    attacher: str
    node: str
    volume: str | None
    attached: bool
    created: datetime


@dataclass(frozen=True)
class PersistentVolume:
    """A v1 PersistentVolume, reduced to the access the engine is asked for."""

    name: str
    mode: AccessMode
    readonly: bool


@dataclass
class Cluster:
    """The objects of one kubectl List."""

    attachments: list[VolumeAttachment] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)
    volumes: dict[str, PersistentVolume] = field(default_factory=dict)
    ignored_kinds: dict[str, int] = field(default_factory=dict)


_MISSING = object()


class _Item:
    """One item of the List, with the location prefix its errors carry."""

    def __init__(self, index: int, obj: dict[str, Any]) -> None:
        self.obj = obj
        kind = obj.get("kind")
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        label = [kind] if isinstance(kind, str) else []
        label += [json.dumps(name)] if isinstance(name, str) else []
        self.where = f"item {index}" + (f" ({' '.join(label)})" if label else "")

    def error(self, path: str, problem: str) -> InputError:
        return InputError(f"{self.where}: {path}: {problem}")

    def get(self, path: str, kind: type, default: Any = _MISSING) -> Any:
        """The value at dotted ``path``, which must be of type ``kind`` (or absent, given a default)."""
        value: Any = self.obj
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value or value[part] is None:
                if default is not _MISSING:
                    return default
                raise self.error(path, "missing")
            value = value[part]
        if not isinstance(value, kind):
            raise self.error(path, f"expected {kind.__name__}, found {type(value).__name__} {json.dumps(value)[:40]}")
        return value

    def timestamp(self, path: str) -> datetime:
        text = self.get(path, str)
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise self.error(path, f"not an RFC 3339 time: {json.dumps(text)[:40]}") from None
        if when.tzinfo is None:
            raise self.error(path, f"time has no UTC offset: {json.dumps(text)[:40]}")
        return when


def _volume_attachment(item: _Item) -> VolumeAttachment:
    return VolumeAttachment(
        name=item.get("metadata.name", str),
        attacher=item.get("spec.attacher", str),
        node=item.get("spec.nodeName", str),
        volume=item.get("spec.source.persistentVolumeName", str, None),
        attached=item.get("status.attached", bool, False),
        created=item.timestamp("metadata.creationTimestamp"),
    )


def _persistent_volume(item: _Item) -> PersistentVolume:
    modes = item.get("spec.accessModes", list, [])
    for i, m in enumerate(modes):
        if not isinstance(m, str):
            raise item.error(f"spec.accessModes[{i}]", f"expected str, found {type(m).__name__}")
    block = item.get("spec.volumeMode", str, "Filesystem") == "Block"
    # The engine's RWX is the live-migration mode of block volumes; every other volume is RWO.
    mode = AccessMode.RWX if block and "ReadWriteMany" in modes else AccessMode.RWO
    return PersistentVolume(
        name=item.get("metadata.name", str),
        mode=mode,
        readonly=item.get("spec.csi.readOnly", bool, False),
    )


def parse(text: str) -> Cluster:
    """The cluster described by kubectl's JSON ``text``; raises :class:`InputError`."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    except RecursionError:
        raise InputError("not JSON the audit can read: nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise InputError('not a kubectl List: expected an object with an "items" array at the top level')
    cluster = Cluster()
    for index, obj in enumerate(doc["items"]):
        if not isinstance(obj, dict):
            raise InputError(f"item {index}: expected an object, found {type(obj).__name__}")
        item = _Item(index, obj)
        kind = item.get("kind", str)
        if kind == "VolumeAttachment":
            cluster.attachments.append(_volume_attachment(item))
        elif kind == "Node":
            cluster.nodes.add(item.get("metadata.name", str))
        elif kind == "PersistentVolume":
            pv = _persistent_volume(item)
            cluster.volumes[pv.name] = pv
        else:
            cluster.ignored_kinds[kind] = cluster.ignored_kinds.get(kind, 0) + 1
    return cluster
