"""One engine shared by Python threads: the RWO invariant holds, every call is counted, and the
calls that run without the GIL (restore, refence, reconcile, ...) never open a gap for another writer."""

import threading
from concurrent.futures import ThreadPoolExecutor

import tether

from conftest import START

THREADS = 8
ROUNDS = 300
VOLUMES = 64


def test_one_writer_per_volume(engine: tether.Engine) -> None:
    winners: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def contend(node: str) -> None:
        start.wait()
        for i in range(ROUNDS):
            volume = f"pvc-{i}"
            try:
                engine.publish(volume, node)
            except tether.AttachmentConflict as refused:
                assert refused.attached_to != (node,)
            else:
                with lock:
                    winners.append(volume)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(contend, [f"node-{t}" for t in range(THREADS)]))
    assert sorted(winners) == sorted(f"pvc-{i}" for i in range(ROUNDS))
    stats = engine.stats()
    assert stats["attached"] == ROUNDS
    assert stats["conflicts"] == ROUNDS * (THREADS - 1)
    assert all(len(a.nodes) == 1 for a in engine.list())


def test_long_calls_run_beside_writers(engine: tether.Engine) -> None:
    stop = threading.Event()

    def churn(node: str) -> None:
        while not stop.is_set():
            engine.publish(f"vol-{node}", node)
            engine.unpublish(f"vol-{node}", node)

    writers = [threading.Thread(target=churn, args=(f"node-{t}",)) for t in range(3)]
    for w in writers:
        w.start()
    try:
        for term in range(200):
            assert all(len(a.nodes) == 1 for a in engine.list())
            engine.snapshot_json()
            engine.reconcile([f"node-{t}" for t in range(3)])
            engine.set_term(term)
            assert all(len(v.fence.nodes) <= 1 for v in engine.refence())
    finally:
        stop.set()
        for w in writers:
            w.join()
    stats = engine.stats()
    assert stats["attached"] == stats["detached"]
    assert engine.attached_count() == 0


def held_by_holder(epochs: int) -> str:
    """A snapshot in which "holder" holds every volume, each volume's epoch `epochs` or more."""
    source = tether.Engine(clock=tether.ManualClock(START))
    for i in range(VOLUMES):
        for _ in range(epochs // 2):
            source.publish(f"pvc-{i}", "holder")
            source.unpublish(f"pvc-{i}")
        source.publish(f"pvc-{i}", "holder")
        # No detach record: holder's attachment is then no late re-attach another node could
        # take over inside the grace period (the handoff row), so every other publish conflicts.
        source.clear_detach_timestamp(f"pvc-{i}")
    return source.snapshot_json()


def test_restore_racing_publishes_grants_nobody_else(engine: tether.Engine) -> None:
    # Two documents with the same holder but other epochs and admissions, so each restore
    # replaces every record instead of finding it unchanged.
    documents = [held_by_holder(1), held_by_holder(4)]
    engine.restore(documents[0])
    stop = threading.Event()
    start = threading.Barrier(THREADS + 1)

    def intrude(node: str) -> list[str]:
        granted = []
        start.wait()
        while True:  # one full pass at least, however quickly the restores finish
            for i in range(VOLUMES):
                try:
                    engine.publish(f"pvc-{i}", node)
                except tether.AttachmentConflict as refused:
                    assert refused.attached_to == ("holder",)
                else:
                    granted.append(f"pvc-{i}")
            if stop.is_set():
                return granted

    with ThreadPoolExecutor(THREADS) as pool:
        intruders = [pool.submit(intrude, f"node-{t}") for t in range(THREADS)]
        start.wait()
        try:
            for r in range(ROUNDS):
                engine.restore(documents[r % 2])
        finally:
            stop.set()
        assert [f.result() for f in intruders] == [[]] * THREADS
    assert [(a.volume, a.nodes) for a in engine.list()] == sorted(
        (f"pvc-{i}", ("holder",)) for i in range(VOLUMES)
    )
    assert engine.stats()["attached"] == 0  # the intruders' publishes were all refused
    assert engine.stats()["conflicts"] >= THREADS * VOLUMES


RACE_ROUNDS = 2000
RACE_RESTORE_EVERY = 250


def test_identical_first_publishes_agree_on_one_attachment(engine: tether.Engine) -> None:
    """Issue 18, hole 1: threads publish one new volume to one never-seen node at once. Exactly one
    is Attached, the others AlreadyAttached with the same admission epoch, the fence lists the node
    once; the engine's snapshot restores into a fresh engine every RACE_RESTORE_EVERY rounds. (A
    publish holds the GIL, so here the calls interleave between rounds of the GIL; the C ABI test
    races them inside the engine.)"""
    start = threading.Barrier(THREADS)
    seen: list[list[tether.PublishOutcome]] = [[] for _ in range(RACE_ROUNDS)]
    lock = threading.Lock()

    def race(_: int) -> None:
        for i in range(RACE_ROUNDS):
            start.wait()
            out = engine.publish(f"race-{i}", f"new-node-{i}", mode="RWO" if i % 2 == 0 else "RWX")
            with lock:
                seen[i].append(out)
            start.wait()

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(race, range(THREADS)))
    for i, outs in enumerate(seen):
        kinds = [o.kind for o in outs]
        assert kinds.count(tether.PublishKind.ATTACHED) == 1, (i, kinds)
        assert kinds.count(tether.PublishKind.ALREADY_ATTACHED) == THREADS - 1, (i, kinds)
        for o in outs:
            assert o.admitted == 1 and o.epoch == 1
            assert [(a.node, a.epoch) for a in o.fence.nodes] == [(f"new-node-{i}", 1)]
        if i % RACE_RESTORE_EVERY == RACE_RESTORE_EVERY - 1:
            tether.Engine().restore(engine.snapshot_json())
    stats = engine.stats()
    assert stats["attached"] == RACE_ROUNDS
    assert stats["already_attached"] == RACE_ROUNDS * (THREADS - 1)
    assert stats["conflicts"] == 0 and stats["migrations_started"] == 0
