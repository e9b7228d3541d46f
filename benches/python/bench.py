"""Python-side cost of tether's grace check and publish/unpublish cycle, beside a pure-Python
dict-and-lock engine of the same RWO contract and an empty two-str-argument function, in one run.

Run: `make bench-python` (or `.venv/bin/python benches/python/bench.py` after `make python-dev`).
Each figure is the best of REPEATS timeit loops, per call, loop overhead included alike; the rows
are measured in turn within each repeat, so load from other processes hits them alike. The loops
are short (about a millisecond) and many, so that on a shared machine each row gets some
undisturbed ones.
"""

from __future__ import annotations

import os
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tether  # noqa: E402
from baseline import DictEngine  # noqa: E402

REPEATS = 200
VOLUME, NODE = "pvc-0123456789abcdef", "worker-node-17"


def empty(volume: str, node: str) -> None:
    """The floor: a Python call with two str arguments that does nothing."""


def best_ns(rows: list[tuple[str, int]], namespace: dict[str, object]) -> dict[str, float]:
    """Best time per call of each statement, the rows interleaved within every repeat."""
    timers = [(stmt, number, timeit.Timer(stmt, globals=namespace)) for stmt, number in rows]
    best = {stmt: float("inf") for stmt, _ in rows}
    for _ in range(REPEATS):
        for stmt, number, timer in timers:
            best[stmt] = min(best[stmt], timer.timeit(number) / number * 1e9)
    return best


def main() -> None:
    engine = tether.Engine()
    baseline = DictEngine()
    for e in (engine, baseline):
        e.publish(VOLUME, NODE)
        e.unpublish(VOLUME, NODE)  # leaves a detach record: the grace check finds and reads it
    ns = {"engine": engine, "baseline": baseline, "empty": empty, "v": VOLUME, "n": NODE}
    rows = [
        ("empty(v, n)", 20_000),
        ("engine.is_within_grace_period(v)", 20_000),
        ("engine.is_within_grace_period(v, 30.0)", 20_000),
        ("baseline.is_within_grace_period(v)", 4_000),
        ("engine.publish(v, n); engine.unpublish(v, n)", 4_000),
        ("baseline.publish(v, n); baseline.unpublish(v, n)", 2_000),
    ]
    figures = best_ns(rows, ns)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, tether abi3 extension, best of {REPEATS}, ns per call (load average {load})")
    for stmt, _ in rows:
        print(f"  {figures[stmt]:8.1f} ns  {stmt}")
    grace = figures["engine.is_within_grace_period(v)"]
    floor = figures["empty(v, n)"]
    cycle = figures["engine.publish(v, n); engine.unpublish(v, n)"]
    base_cycle = figures["baseline.publish(v, n); baseline.unpublish(v, n)"]
    print(f"grace check: {grace:.1f} ns (target < 150 ns: {'met' if grace < 150 else 'NOT met'})")
    print(f"grace check / empty function: {grace / floor:.2f}x (target <= 1.5x: {'met' if grace <= 1.5 * floor else 'NOT met'})")
    print(f"publish/unpublish speed-up over pure Python: {base_cycle / cycle:.1f}x (target >= 5x: {'met' if base_cycle >= 5 * cycle else 'NOT met'})")


if __name__ == "__main__":
    main()
