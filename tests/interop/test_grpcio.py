"""grpcio against tether-csi on its Unix socket, with and without a usable :authority.

A default `grpc.insecure_channel("unix://...")` sends the socket path, percent-encoded, as
`:authority`, which h2 refuses; the driver's authority adapter rewrites it. The channel that
sets `grpc.default_authority` sends a valid one, which must keep working as it did.
Run by tests/interop/run.sh, which starts the driver and generates the stubs:
TETHER_CSI_SOCKET is the driver's socket, TETHER_CSI_STUBS the folder of csi_pb2*.py.
"""
import os
import socket
import sys
import tempfile
import threading
import uuid

import grpc
import hpack
import pytest

sys.path.insert(0, os.environ["TETHER_CSI_STUBS"])
import csi_pb2  # noqa: E402
import csi_pb2_grpc  # noqa: E402

SOCKET = os.environ["TETHER_CSI_SOCKET"]
TIMEOUT = 10
MIB = 1 << 20
DEFAULT = []
VALID_AUTHORITY = [("grpc.default_authority", "localhost")]
CHANNELS = {"default": DEFAULT, "valid-authority": VALID_AUTHORITY}


@pytest.fixture(params=list(CHANNELS), ids=list(CHANNELS))
def channel(request):
    with grpc.insecure_channel(f"unix://{SOCKET}", options=CHANNELS[request.param]) as ch:
        yield ch


def rwo():
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(
            mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        ),
    )


def create(channel, name):
    req = csi_pb2.CreateVolumeRequest(
        name=name, capacity_range=csi_pb2.CapacityRange(required_bytes=MIB), volume_capabilities=[rwo()]
    )
    return csi_pb2_grpc.ControllerStub(channel).CreateVolume(req, timeout=TIMEOUT).volume


def publish(channel, volume_id, node):
    req = csi_pb2.ControllerPublishVolumeRequest(volume_id=volume_id, node_id=node, volume_capability=rwo())
    return csi_pb2_grpc.ControllerStub(channel).ControllerPublishVolume(req, timeout=TIMEOUT)


def captured_authority(options):
    """The :authority grpcio sends on a Unix socket, read by a bare HTTP/2 listener."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "csi.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        result = {}

        def serve():
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # an empty SETTINGS frame
                data = b""
                while len(data) < 24 + 9 or not result:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                    result.update(first_headers(data[24:]))

        thread = threading.Thread(target=serve)
        thread.start()
        with grpc.insecure_channel(f"unix://{path}", options=options) as ch:
            with pytest.raises(grpc.RpcError):
                csi_pb2_grpc.IdentityStub(ch).Probe(csi_pb2.ProbeRequest(), timeout=2)
        thread.join(TIMEOUT)
        listener.close()
        return result.get(":authority")


def first_headers(frames):
    """The fields of the first complete HEADERS frame in `frames`, or {} if none is whole yet."""
    while len(frames) >= 9:
        length, kind, flags = int.from_bytes(frames[:3], "big"), frames[3], frames[4]
        if len(frames) < 9 + length:
            return {}
        payload = frames[9 : 9 + length]
        if kind == 0x1:
            assert flags & 0x4, "the request's headers fit one frame"
            assert not flags & 0x28, "no padding or priority"
            return dict(hpack.Decoder().decode(payload))
        frames = frames[9 + length :]
    return {}


def test_a_default_channel_sends_an_authority_h2_refuses():
    # What makes the other tests on the default channel exercise the adapter.
    authority = captured_authority(DEFAULT)
    assert authority is not None and authority != "localhost"
    assert "csi.sock" in authority and ("%2F" in authority or "/" in authority), authority
    assert captured_authority(VALID_AUTHORITY) == "localhost"


def test_probe_and_plugin_info(channel):
    identity = csi_pb2_grpc.IdentityStub(channel)
    for _ in range(5):  # later streams refer to the first one's HPACK table entries
        assert identity.Probe(csi_pb2.ProbeRequest(), timeout=TIMEOUT).ready.value is True
    info = identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=TIMEOUT)
    assert info.name and info.vendor_version


def test_create_volume_and_controller_publish(channel):
    name = f"pvc-{uuid.uuid4().hex[:12]}"
    volume = create(channel, name)
    assert volume.volume_id and volume.capacity_bytes >= MIB
    assert create(channel, name).volume_id == volume.volume_id, "CreateVolume is idempotent by name"
    published = publish(channel, volume.volume_id, "node-2")
    ctx = published.publish_context
    assert int(ctx["tether.io/epoch"]) >= 1
    assert ctx["tether.io/node"] == "node-2"
    assert publish(channel, volume.volume_id, "node-2").publish_context == ctx, "republish is idempotent"


def test_errors_arrive_with_their_code_and_message(channel):
    volume = create(channel, f"pvc-{uuid.uuid4().hex[:12]}")
    publish(channel, volume.volume_id, "node-2")
    with pytest.raises(grpc.RpcError) as refused:
        publish(channel, volume.volume_id, "node-3")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "node-2" in refused.value.details()


def test_concurrent_calls_on_one_channel(channel):
    identity = csi_pb2_grpc.IdentityStub(channel)
    futures = [identity.Probe.future(csi_pb2.ProbeRequest(), timeout=TIMEOUT) for _ in range(32)]
    assert all(f.result().ready.value for f in futures)
