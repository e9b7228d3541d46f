"""The contract corpus (tests/contract/*.json) run over the ``tether`` package: one test per scenario.

The format is tests/contract/README.md; the outcome shapes are corpus_shape.py. After every step the
engine's invariants are checked, and after a refused step its whole state must be unchanged.
"""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

import tether
from corpus_shape import Json, error, fence, published, reconciled, stale, unpublished

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "contract"
START = datetime.fromtimestamp(1_764_000_000, tz=timezone.utc)


class Fields:
    """One JSON object whose every key must be read: a misspelt key fails instead of being ignored."""

    def __init__(self, obj: Json, what: str) -> None:
        assert isinstance(obj, dict), f"{what}: not an object: {obj!r}"
        self.obj: dict[str, Any] = obj
        self.what = what
        self.read: set[str] = set()

    def opt(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        value = self.obj.get(key)
        return default if value is None else value

    def get(self, key: str) -> Any:
        assert key in self.obj, f"{self.what}: missing key {key!r}"
        return self.opt(key)

    def finish(self) -> None:
        unknown = sorted(set(self.obj) - self.read)
        assert not unknown, f"{self.what}: unknown keys {unknown}"


def ident(v: Json) -> str:
    """An identifier: a string, or {"repeat": s, "times": n}."""
    if isinstance(v, str):
        return v
    f = Fields(v, "identifier")
    s = str(f.get("repeat")) * int(f.get("times"))
    f.finish()
    return s


def subset(want: Json, got: Json, path: str = "expect") -> None:
    """Every key `want` names is in `got` with an equal value (numbers by value, never a bool for a number)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: expected {want}, got {got}"
        for key, value in want.items():
            assert key in got, f"{path}.{key}: expected {value!r}, but the outcome has no such key"
            subset(value, got[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: expected {want}, got {got}"
        for i, (w, g) in enumerate(zip(want, got)):
            subset(w, g, f"{path}[{i}]")
    else:
        assert isinstance(want, bool) == isinstance(got, bool) and want == got, f"{path}: expected {want!r}, got {got!r}"


def scenarios() -> list[Any]:
    out = []
    for path in sorted(CORPUS.glob("*.json")):
        doc = json.loads(path.read_text())
        f = Fields(doc, path.name)
        area, _, items = f.get("area"), f.get("design"), f.get("scenarios")
        f.finish()
        out += [pytest.param(s, id=f"{area}: {s.get('name')}") for s in items]
    return out


class World:
    def __init__(self, wall: datetime, snapshot: str | None = None) -> None:
        self.clock = tether.ManualClock(wall)
        self.engine = tether.Engine(grace_period=30.0, migration_timeout=300.0, clock=self.clock)
        if snapshot is not None:
            self.engine.restore(snapshot)

    def outcome(self, call: Callable[[], Any], shape: Callable[[Any], Json]) -> Json:
        try:
            return shape(call())
        except tether.TetherError as e:
            return error(e)

    def step(self, s: Json) -> None:
        f = Fields(s, "step")
        f.opt("note")
        want = f.opt("expect")
        before = self.engine.snapshot()
        got = self.apply(str(f.get("op")), f)
        f.finish()
        if "error" in got:
            assert self.engine.snapshot() == before, f"refused with {got}, but the state changed"
        self.invariants()
        if want is None:
            assert "error" not in got, f"no error expected, got {got}"
        else:
            assert "error" in want or "error" not in got, f"expected {want}, refused with {got}"
            subset(want, got)

    def invariants(self) -> None:
        for a in self.engine.list():
            limit = 1 if a.mode == tether.AccessMode.RWO else 2
            assert len(a.nodes) <= limit, f"invariant broken: {a.volume} on {a.nodes}"
            f = self.engine.fence(a.volume)
            assert f is not None and [n.node for n in f.nodes] == list(a.nodes) and f.epoch == a.epoch

    def apply(self, op: str, f: Fields) -> Json:
        e = self.engine
        if op == "publish":
            v, n, mode, ro = ident(f.get("volume")), ident(f.get("node")), f.opt("mode", "RWO"), f.opt("readonly", False)
            timeout = f.opt("timeout_s")
            return self.outcome(lambda: e.publish(v, n, mode, ro, timeout), published)
        if op == "unpublish":
            v, node = ident(f.get("volume")), f.opt("node")
            return self.outcome(lambda: e.unpublish(v, None if node is None else ident(node)), unpublished)
        if op == "clear_stale":
            v, n = ident(f.get("volume")), ident(f.get("node"))
            return self.outcome(lambda: e.clear_stale(v, n), stale)
        if op == "reconcile":
            live = [ident(n) for n in f.get("live")]
            return self.outcome(lambda: e.reconcile(live), reconciled)
        if op == "advance":
            self.clock.advance(float(f.get("seconds")))
            return {}
        if op == "set_grace":
            seconds = float(f.get("seconds"))
            return self.outcome(lambda: setattr(e, "grace_period", seconds), lambda _: {})
        if op == "set_migration_timeout":
            e.migration_timeout = float(f.get("seconds"))
            return {"timeout_s": e.migration_timeout.total_seconds()}
        if op == "set_term":
            term = int(f.get("term"))
            return self.outcome(lambda: e.set_term(term), lambda t: {"term": t})
        if op == "refence":
            return {"fences": [{"volume": vf.volume, "fence": fence(vf.fence)} for vf in e.refence()]}
        if op == "forget":
            v = ident(f.get("volume"))
            return self.outcome(lambda: e.forget(v), lambda b: {"forgotten": b})
        if op == "clear_detach":
            v = ident(f.get("volume"))
            return self.outcome(lambda: e.clear_detach_timestamp(v), lambda b: {"cleared": b})
        return self.apply_more(op, f)

    def apply_more(self, op: str, f: Fields) -> Json:
        e = self.engine
        if op == "snapshot_restore":
            snapshot, wall = e.snapshot_json(), self.clock.now()
            self.__init__(wall, snapshot)  # type: ignore[misc]
            return {}
        if op == "restore":
            doc, text = f.opt("document"), f.opt("text")
            assert (doc is None) != (text is None), "restore takes exactly one of document and text"
            body = json.dumps(doc) if text is None else str(text)
            return self.outcome(lambda: e.restore(body), lambda _: {})
        if op in ("session", "supersedes"):
            v = ident(f.get("volume"))
            check: Callable[[tether.Fence], None]
            if op == "session":
                node, presented = ident(f.get("node")), int(f.get("presented"))
                check = lambda fc: fc.check_session(v, node, presented)  # noqa: E731
            else:
                applied = f.opt("applied")
                check = lambda fc: fc.check_supersedes(v, applied)  # noqa: E731
            current = e.fence(v)
            if current is None:
                return {"error": "Untracked"}
            return self.outcome(lambda: check(current), lambda _: {"ok": True})
        if op == "check":
            return self.check(ident(f.get("volume")), f.opt("grace_s"))
        if op == "stats":
            return dict(e.stats())
        raise AssertionError(f"unknown step {op!r}")

    def check(self, v: str, grace_s: float | None) -> Json:
        e = self.engine
        grace = e.grace_period if grace_s is None else timedelta(seconds=grace_s)

        def read() -> Json:
            a, fc, d = e.get(v), e.fence(v), e.detach_timestamp(v)
            return {
                "nodes": None if a is None else list(a.nodes),
                "access": None if a is None else (("RWO" if a.mode == tether.AccessMode.RWO else "RWX") + ("-ro" if a.readonly else "")),
                "admitted": None if a is None else list(a.admitted),
                "migration": None if a is None or a.migration is None else
                {"elapsed_s": a.migration.elapsed.total_seconds(), "timeout_s": a.migration.timeout.total_seconds()},
                "epoch": e.epoch(v),
                "fence": None if fc is None else fence(fc),
                "detach": None if d is None else {"node": d.node, "age_s": d.age.total_seconds()},
                "within_grace": e.is_within_grace_period(v, grace),
            }

        return self.outcome(read, lambda j: j)


@pytest.mark.parametrize("scenario", scenarios())
def test_scenario(scenario: Json) -> None:
    f = Fields(scenario, "scenario")
    f.get("name"), f.opt("row"), f.opt("csi")
    steps = f.get("steps")
    f.finish()
    world = World(START)
    for i, s in enumerate(steps, 1):
        try:
            world.step(s)
        except AssertionError as why:
            raise AssertionError(f"step {i} ({s.get('op')}): {why}") from None


def test_corpus_is_there() -> None:
    assert len(scenarios()) >= 50, "the corpus was not found or lost scenarios"
