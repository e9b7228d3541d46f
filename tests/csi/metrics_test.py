#!/usr/bin/env python3
"""Scrapes tether-csi's /metrics after a scripted sequence and checks every DESIGN.md metric.

Runs the `metrics_scenario` example (cargo), which drives a fixed sequence of CSI calls over
a Unix socket against an in-process driver on a manual clock and then serves its metrics.
The exposition text is parsed with prometheus_client's parser, not by hand.
Usage: metrics_test.py  (from the repository root, with cargo on PATH)
"""
import subprocess
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

NS = "rds_csi"
OPERATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf")]

# What the scenario in driver/examples/metrics_scenario.rs must produce.
EXPECTED = {
    (f"{NS}_attachment_attach_total", "status"): {
        "attached": 4, "already_attached": 1, "handed_off": 1, "migration_started": 3,
        "conflict": 1, "incompatible": 1, "migration_limit": 1, "migration_timed_out": 1,
    },
    (f"{NS}_attachment_detach_total", "status"): {
        "detached": 1, "not_attached": 1, "migration_completed": 1, "migration_aborted": 1,
    },
    (f"{NS}_attachment_reconcile_total", "action"): {
        "run": 1, "stale_cleared": 0, "migration_timed_out": 1, "rebuilt": 0, "holder_gone": 0, "orphan": 0,
    },
    (f"{NS}_migration_migrations_total", "result"): {"started": 3, "completed": 1, "aborted": 1, "timeout": 1},
    (f"{NS}_events_posted_total", "reason"): {
        "VolumeAttached": 5, "AttachmentConflict": 3, "VolumeDetached": 1, "MigrationStarted": 3,
        "MigrationCompleted": 1, "MigrationFailed": 2, "StaleAttachmentCleared": 0,
    },
}
SCALARS = {
    f"{NS}_attachment_conflicts_total": 1,
    f"{NS}_attachment_grace_period_used_total": 1,
    f"{NS}_attachment_stale_cleared_total": 0,
    f"{NS}_migration_active_migrations": 1,
}
# RPCs per operation label in the scenario.
OPERATION_COUNTS = {"create_volume": 3, "controller_publish": 13, "controller_unpublish": 4}


def scrape(base):
    with urllib.request.urlopen(f"{base}/healthz") as r:
        assert r.status == 200, "healthz"
    with urllib.request.urlopen(f"{base}/readyz") as r:
        assert r.status == 200, "readyz"
    with urllib.request.urlopen(f"{base}/metrics") as r:
        return r.read().decode()


def samples(text):
    """Every sample as {(name, frozenset(labels)): value}, plus each family's type."""
    out, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out, types


def check(text):
    got, types = samples(text)
    failures = []

    def expect(name, labels, want):
        value = got.get((name, frozenset(labels.items())))
        if value != want:
            failures.append(f"{name}{labels}: want {want}, got {value}")

    for (name, label), values in EXPECTED.items():
        for label_value, want in values.items():
            expect(name, {label: label_value}, want)
        present = {dict(k[1]).get(label) for k in got if k[0] == name}
        if present != set(values):
            failures.append(f"{name}: label values {sorted(present)} differ from {sorted(values)}")
    for name, want in SCALARS.items():
        expect(name, {}, want)

    hist = f"{NS}_attachment_operation_duration_seconds"
    for op, count in OPERATION_COUNTS.items():
        expect(f"{hist}_count", {"operation": op}, count)
        expect(f"{hist}_bucket", {"operation": op, "le": "+Inf"}, count)
        buckets = sorted(float(dict(k[1])["le"]) for k in got
                         if k[0] == f"{hist}_bucket" and dict(k[1])["operation"] == op)
        if buckets != OPERATION_BUCKETS:
            failures.append(f"{hist}{{operation={op}}} buckets {buckets}")

    mig = f"{NS}_migration_duration_seconds"
    expect(f"{mig}_count", {}, 1)
    expect(f"{mig}_sum", {}, 42.0)
    mig_buckets = {float(dict(k[1])["le"]): v for k, v in got.items() if k[0] == f"{mig}_bucket"}
    if mig_buckets.get(30.0) != 0 or mig_buckets.get(60.0) != 1:
        failures.append(f"{mig}: a 42 s migration must be in le=60, not le=30: {mig_buckets}")

    want_types = {
        f"{NS}_attachment_attach": "counter", f"{NS}_attachment_detach": "counter",
        f"{NS}_attachment_conflicts": "counter", f"{NS}_attachment_reconcile": "counter",
        f"{NS}_attachment_grace_period_used": "counter", f"{NS}_attachment_stale_cleared": "counter",
        f"{NS}_events_posted": "counter", f"{NS}_migration_migrations": "counter",
        hist: "histogram", mig: "histogram", f"{NS}_migration_active_migrations": "gauge",
    }
    for family, kind in want_types.items():
        if types.get(family) != kind:
            failures.append(f"{family}: type {types.get(family)}, want {kind}")
    # No metric is labelled by volume or node.
    for name, labels in got:
        if {"volume", "node"} & {k for k, _ in labels}:
            failures.append(f"{name} carries a volume or node label")
    return failures


def main():
    proc = subprocess.Popen(
        ["cargo", "run", "--quiet", "--locked", "-p", "tether-driver", "--example", "metrics_scenario"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("METRICS "):
            print(f"metrics_scenario did not start (printed {line!r})")
            return 1
        text = scrape(line.split()[1])
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    failures = check(text)
    for f in failures:
        print("FAIL", f)
    if failures:
        return 1
    print(f"metrics test: every DESIGN.md metric has its expected value ({len(text.splitlines())} lines parsed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
