"""What the authority adapter costs a grpcio user: Probe round trips on a default channel
(rewritten) beside a channel with a valid authority (forwarded), in alternating rounds of
one run, so load on the machine falls on both alike. Prints calls per second and the ratio.
Usage: run.sh --bench <tether-csi> <venv python> (it starts the driver and the stubs).
"""
import os
import sys
import time

import grpc

sys.path.insert(0, os.environ["TETHER_CSI_STUBS"])
import csi_pb2  # noqa: E402
import csi_pb2_grpc  # noqa: E402

ROUNDS = 10
CALLS = 300
CHANNELS = {"default (rewritten)": [], "valid authority (forwarded)": [("grpc.default_authority", "localhost")]}


def main():
    target = f"unix://{os.environ['TETHER_CSI_SOCKET']}"
    stubs = {}
    for name, options in CHANNELS.items():
        stubs[name] = csi_pb2_grpc.IdentityStub(grpc.insecure_channel(target, options=options))
        stubs[name].Probe(csi_pb2.ProbeRequest(), timeout=10)  # connect outside the timing
    spent = dict.fromkeys(CHANNELS, 0.0)
    for _ in range(ROUNDS):
        for name, stub in stubs.items():
            start = time.perf_counter()
            for _ in range(CALLS):
                stub.Probe(csi_pb2.ProbeRequest(), timeout=10)
            spent[name] += time.perf_counter() - start
    rate = {name: ROUNDS * CALLS / s for name, s in spent.items()}
    for name, r in rate.items():
        print(f"grpcio Probe, {name:<28} {r:8.0f} calls/s  {1e6 / r:7.1f} us/call")
    default, valid = rate.values()
    print(f"default/valid calls/s ratio: {default / valid:.3f}")


if __name__ == "__main__":
    main()
