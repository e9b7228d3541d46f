"""One engine shared by Python threads: the RWO invariant holds and every call is counted."""

import threading
from concurrent.futures import ThreadPoolExecutor

import tether

THREADS = 8
ROUNDS = 300


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
        for _ in range(200):
            assert all(len(a.nodes) == 1 for a in engine.list())
            engine.snapshot_json()
            engine.reconcile([f"node-{t}" for t in range(3)])
    finally:
        stop.set()
        for w in writers:
            w.join()
    stats = engine.stats()
    assert stats["attached"] == stats["detached"]
    assert engine.attached_count() == 0
