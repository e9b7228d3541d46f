"""``python -m tether audit``: replay a cluster's VolumeAttachments into an engine and report
what the attachment rules refuse.

The audit decides nothing itself: every attached VolumeAttachment is published to a fresh
engine in creation order, on a manual clock set to each creationTimestamp, and the engine's
own refusals and reconcile report are the findings:

- ``rwo_multi_attach``: an RWO volume on more than one node (the engine raised AttachmentConflict);
- ``rwx_over_two_nodes``: an RWX volume on more than two nodes (MigrationLimit or MigrationTimedOut);
- ``incompatible_attachment``: one node holding a volume twice with different access;
- ``missing_node``: an attachment to a node that no longer exists (reconcile lists it as missing);
- ``stuck_migration``: a migration older than its timeout. A migration starts when its second
  VolumeAttachment was created (the later creationTimestamp of the two) and is stuck when, at
  ``--now``, it has run longer than ``--migration-timeout`` (default 300 s, clamped to 30 s .. 1 h).

Access comes from the PersistentVolume: ``ReadWriteMany`` with ``volumeMode: Block`` is RWX (the
live-migration mode), everything else RWO; ``spec.csi.readOnly`` gives read-only. Only
VolumeAttachments with ``status.attached: true`` count; inline volumes (no PV name) are skipped.

Exit status: 0 clean, 1 problems found, 2 unreadable or malformed input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from tether._tether import (
    AccessMode,
    AttachmentConflict,
    Engine,
    IncompatibleAttachment,
    InvalidInput,
    ManualClock,
    MigrationLimit,
    MigrationTimedOut,
    TetherError,
)
from tether.cluster import Cluster, InputError, VolumeAttachment, parse

# Which finding each refusal of the engine is.
_REFUSALS: dict[type[TetherError], str] = {
    AttachmentConflict: "rwo_multi_attach",
    MigrationLimit: "rwx_over_two_nodes",
    MigrationTimedOut: "rwx_over_two_nodes",
    IncompatibleAttachment: "incompatible_attachment",
}

TITLES = {
    "rwo_multi_attach": "RWO volume attached to more than one node",
    "rwx_over_two_nodes": "RWX volume attached to more than two nodes",
    "incompatible_attachment": "volume attached twice to one node with different access",
    "missing_node": "attachment to a node that no longer exists",
    "stuck_migration": "migration older than its timeout",
}


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, the volume, the nodes involved and the engine's words."""

    kind: str
    volume: str
    nodes: tuple[str, ...]
    attachment: str | None
    message: str


@dataclass
class Report:
    """What the audit found, with a summary of what it read."""

    findings: list[Finding] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not self.findings


def _advance_to(clock: ManualClock, when: datetime) -> None:
    """Moves the clock to ``when``; a time before the clock's is left as it is (clocks never go back)."""
    gap = when - clock.now()
    if gap > timedelta(0):
        clock.advance(gap)


def _nodes_of(refusal: TetherError, node: str) -> tuple[str, ...]:
    """The nodes a refusal involves: those holding the volume, then the refused one."""
    if isinstance(refusal, AttachmentConflict):
        held = refusal.attached_to
    elif isinstance(refusal, (MigrationLimit, MigrationTimedOut)):
        held = refusal.nodes
    else:
        held = ()
    return held if node in held else (*held, node)


def _replay(
    cluster: Cluster, attached: list[tuple[VolumeAttachment, str]], engine: Engine, clock: ManualClock
) -> list[Finding]:
    """Publishes each attachment at its creation time; returns the engine's refusals."""
    findings = []
    for va, volume in attached:
        _advance_to(clock, va.created)
        pv = cluster.volumes.get(volume)
        mode = pv.mode if pv else AccessMode.RWO
        try:
            engine.publish(volume, va.node, mode, readonly=pv.readonly if pv else False)
        except InvalidInput as e:
            raise InputError(f'VolumeAttachment "{va.name}": {e}') from None
        except (AttachmentConflict, MigrationLimit, MigrationTimedOut, IncompatibleAttachment) as e:
            findings.append(Finding(_REFUSALS[type(e)], volume, _nodes_of(e, va.node), va.name, str(e)))
    return findings


def _after_reconcile(engine: Engine, cluster: Cluster, names: dict[tuple[str, str], str]) -> list[Finding]:
    """Missing nodes and stuck migrations, as the engine's reconcile reports them."""
    report = engine.reconcile(sorted(cluster.nodes))
    findings = []
    missing = {p.node for p in report.pending} | {c.node for c in report.cleared}
    for a in engine.list():
        for node in a.nodes:
            if node in missing:
                va = names.get((a.volume, node))
                message = f'volume "{a.volume}" is attached to node "{node}", which no longer exists'
                findings.append(Finding("missing_node", a.volume, (node,), va, message))
    for m in report.timed_out_migrations:
        message = (
            f'volume "{m.volume}" has been migrating from node "{m.source}" to node "{m.target}" '
            f"for {m.elapsed}, past its timeout of {m.timeout}; unpublish one side to end it"
        )
        findings.append(Finding("stuck_migration", m.volume, (m.source, m.target), names.get((m.volume, m.target)), message))
    return findings


def audit(
    cluster: Cluster,
    now: datetime,
    migration_timeout: float = 300.0,
    driver: str | None = None,
) -> Report:
    """Replays ``cluster`` into an engine and reports what its rules refuse, as of ``now``."""
    chosen = [va for va in cluster.attachments if driver is None or va.attacher == driver]
    attached = sorted(
        ((va, va.volume) for va in chosen if va.attached and va.volume), key=lambda pair: (pair[0].created, pair[0].name)
    )
    clock = ManualClock(attached[0][0].created if attached else now)
    engine = Engine(migration_timeout=migration_timeout, clock=clock)
    findings = _replay(cluster, attached, engine, clock)
    _advance_to(clock, now)
    names = {(volume, va.node): va.name for va, volume in attached}
    findings += _after_reconcile(engine, cluster, names)
    summary = {
        "volume_attachments": len(chosen),
        "attached": len(attached),
        "inline_skipped": sum(1 for va in chosen if va.attached and not va.volume),
        "nodes": len(cluster.nodes),
        "persistent_volumes": len(cluster.volumes),
        "ignored_kinds": dict(sorted(cluster.ignored_kinds.items())),
        "now": now.isoformat(),
    }
    return Report(findings, summary)


def _print_text(report: Report, out: TextIO) -> None:
    s = report.summary
    print(
        f"tether audit: {s['volume_attachments']} VolumeAttachments ({s['attached']} attached), "
        f"{s['nodes']} nodes, {s['persistent_volumes']} PersistentVolumes, as of {s['now']}",
        file=out,
    )
    for f in report.findings:
        where = f' (VolumeAttachment "{f.attachment}")' if f.attachment else ""
        print(f"PROBLEM {f.kind}: {TITLES[f.kind]}{where}: {f.message}", file=out)
    verdict = "clean" if report.clean else f"{len(report.findings)} problem(s) found"
    print(f"tether audit: {verdict}", file=out)


def _print_json(report: Report, out: TextIO) -> None:
    doc = {"clean": report.clean, "problems": [asdict(f) for f in report.findings], "summary": report.summary}
    json.dump(doc, out, indent=2)
    out.write("\n")


def _read(path: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as e:
        raise InputError(f"cannot read it: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text (bad byte at offset {e.start})") from None


def _time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tether", description="Tether's command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    audit_cmd = commands.add_parser(
        "audit",
        help="check kubectl's VolumeAttachments, Nodes and PVs against the attachment rules",
        description="Reads `kubectl get volumeattachments,nodes,pv -o json` output and reports RWO volumes "
        "on more than one node, RWX volumes on more than two, attachments to deleted nodes and "
        "migrations older than their timeout. Exit 0 clean, 1 problems, 2 malformed input.",
    )
    audit_cmd.add_argument("file", nargs="?", default="-", help="the JSON file (default: standard input)")
    audit_cmd.add_argument("--json", action="store_true", help="print a JSON report")
    audit_cmd.add_argument("--now", type=_time, help="the time to audit at (RFC 3339; default: the current time)")
    audit_cmd.add_argument(
        "--migration-timeout", type=float, default=300.0, metavar="SECONDS", help="migration timeout (default 300)"
    )
    audit_cmd.add_argument("--driver", help="only VolumeAttachments of this CSI driver (spec.attacher)")
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Runs the command line; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    now = args.now or datetime.now(timezone.utc)
    try:
        cluster = parse(_read(args.file))
        report = audit(cluster, now, args.migration_timeout, args.driver)
    except InputError as e:
        source = "<stdin>" if args.file == "-" else args.file
        print(f"tether audit: {source}: {e}", file=err)
        return 2
    except InvalidInput as e:
        print(f"tether audit: {e}", file=err)
        return 2
    (_print_json if args.json else _print_text)(report, out)
    return 0 if report.clean else 1
