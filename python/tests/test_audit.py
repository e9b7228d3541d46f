"""`python -m tether audit` on kubectl-shaped fixture files written by the tests."""

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.audit import main

DRIVER = "tether.csi.example.com"
NOW = "2026-03-02T10:00:00Z"


def volume_attachment(name: str, pv: str | None, node: str, created: str, attached: bool = True,
                      attacher: str = DRIVER) -> dict[str, Any]:
    source: dict[str, Any] = {"persistentVolumeName": pv} if pv else {"inlineVolumeSpec": {"csi": {"driver": attacher}}}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "VolumeAttachment",
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "resourceVersion": "48213",
            "uid": f"uid-{name}",
            "finalizers": ["external-attacher/tether-csi-example-com"],
            "annotations": {"csi.alpha.kubernetes.io/node-id": node},
        },
        "spec": {"attacher": attacher, "nodeName": node, "source": source},
        "status": {"attached": attached, "attachmentMetadata": {"epoch": "1"}} if attached else {"attached": False},
    }


def node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def persistent_volume(name: str, modes: list[str], volume_mode: str = "Filesystem",
                      readonly: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": DRIVER}},
        "spec": {
            "accessModes": modes,
            "capacity": {"storage": "10Gi"},
            "csi": {"driver": DRIVER, "volumeHandle": name, "readOnly": readonly},
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "tether",
            "volumeMode": volume_mode,
        },
        "status": {"phase": "Bound"},
    }


def kube_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": list(items), "kind": "List", "metadata": {"resourceVersion": ""}}


def healthy_cluster() -> list[dict[str, Any]]:
    return [
        node("worker-1"),
        node("worker-2"),
        node("worker-3"),
        persistent_volume("pvc-db", ["ReadWriteOnce"]),
        persistent_volume("pvc-logs", ["ReadWriteOnce"]),
        persistent_volume("pvc-vm", ["ReadWriteMany"], "Block"),
        volume_attachment("csi-aaa1", "pvc-db", "worker-1", "2026-03-01T08:00:00Z"),
        volume_attachment("csi-aaa2", "pvc-logs", "worker-2", "2026-03-01T08:05:00Z"),
        # Detaching from worker-3: no longer attached, so not a second writer.
        volume_attachment("csi-aaa3", "pvc-db", "worker-3", "2026-03-01T07:00:00Z", attached=False),
        # A live migration that started a minute ago: within its 5 min timeout.
        volume_attachment("csi-vm-1", "pvc-vm", "worker-1", "2026-03-01T09:00:00Z"),
        volume_attachment("csi-vm-2", "pvc-vm", "worker-2", "2026-03-02T09:59:00Z"),
        # Another driver's volume and an inline volume are not ours to judge twice.
        volume_attachment("csi-other", "pvc-db", "worker-2", "2026-03-01T08:00:00Z", attacher="other.csi.io"),
        volume_attachment("csi-inline", None, "worker-3", "2026-03-01T08:00:00Z"),
    ]


def run(tmp_path: Path, doc: Any, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "cluster.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    out, err = io.StringIO(), io.StringIO()
    status = main(["audit", str(path), "--now", NOW, *args], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def problems(tmp_path: Path, doc: Any, *args: str) -> tuple[int, list[dict[str, Any]]]:
    status, out, err = run(tmp_path, doc, "--json", *args)
    assert err == ""
    report = json.loads(out)
    assert report["clean"] == (status == 0)
    return status, report["problems"]


def test_clean_cluster(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, kube_list(*healthy_cluster()), "--driver", DRIVER)
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == "tether audit: clean"
    assert "6 VolumeAttachments (4 attached), 3 nodes, 3 PersistentVolumes" in out


def test_clean_cluster_json_summary(tmp_path: Path) -> None:
    status, out, _ = run(tmp_path, kube_list(*healthy_cluster()), "--json", "--driver", DRIVER)
    report = json.loads(out)
    assert status == 0 and report["clean"] and report["problems"] == []
    assert report["summary"]["attached"] == 4
    assert report["summary"]["inline_skipped"] == 1


def test_other_drivers_count_without_filter(tmp_path: Path) -> None:
    status, found = problems(tmp_path, kube_list(*healthy_cluster()))
    assert status == 1
    assert [(p["kind"], p["attachment"]) for p in found] == [("rwo_multi_attach", "csi-other")]


def test_rwo_double_attach(tmp_path: Path) -> None:
    items = healthy_cluster() + [volume_attachment("csi-bad", "pvc-logs", "worker-3", "2026-03-02T09:30:00Z")]
    status, found = problems(tmp_path, kube_list(*items), "--driver", DRIVER)
    assert status == 1
    assert found == [
        {
            "kind": "rwo_multi_attach",
            "volume": "pvc-logs",
            "nodes": ["worker-2", "worker-3"],
            "attachment": "csi-bad",
            "message": found[0]["message"],
        }
    ]
    assert 'it is attached to node "worker-2"' in found[0]["message"]


def test_rwo_double_attach_text(tmp_path: Path) -> None:
    items = healthy_cluster() + [volume_attachment("csi-bad", "pvc-logs", "worker-3", "2026-03-02T09:30:00Z")]
    status, out, _ = run(tmp_path, kube_list(*items), "--driver", DRIVER)
    assert status == 1
    assert 'PROBLEM rwo_multi_attach: RWO volume attached to more than one node (VolumeAttachment "csi-bad")' in out
    assert out.splitlines()[-1] == "tether audit: 1 problem(s) found"


def test_rwx_filesystem_is_not_a_migration(tmp_path: Path) -> None:
    items = [
        node("worker-1"),
        node("worker-2"),
        persistent_volume("pvc-shared", ["ReadWriteMany"], "Filesystem"),
        volume_attachment("csi-s1", "pvc-shared", "worker-1", "2026-03-02T09:00:00Z"),
        volume_attachment("csi-s2", "pvc-shared", "worker-2", "2026-03-02T09:01:00Z"),
    ]
    status, found = problems(tmp_path, kube_list(*items))
    assert status == 1 and [p["kind"] for p in found] == ["rwo_multi_attach"]


def test_rwx_on_three_nodes(tmp_path: Path) -> None:
    items = healthy_cluster() + [volume_attachment("csi-vm-3", "pvc-vm", "worker-3", "2026-03-02T09:59:30Z")]
    status, found = problems(tmp_path, kube_list(*items), "--driver", DRIVER)
    assert status == 1
    assert [(p["kind"], p["volume"], p["nodes"]) for p in found] == [
        ("rwx_over_two_nodes", "pvc-vm", ["worker-1", "worker-2", "worker-3"])
    ]


def test_deleted_node(tmp_path: Path) -> None:
    items = [i for i in healthy_cluster() if i["metadata"]["name"] != "worker-2"]
    status, found = problems(tmp_path, kube_list(*items), "--driver", DRIVER)
    assert status == 1
    assert sorted((p["kind"], p["volume"], p["attachment"]) for p in found) == [
        ("missing_node", "pvc-logs", "csi-aaa2"),
        ("missing_node", "pvc-vm", "csi-vm-2"),
    ]


def test_stuck_migration(tmp_path: Path) -> None:
    items = healthy_cluster()
    for item in items:
        if item["metadata"]["name"] == "csi-vm-2":
            item["metadata"]["creationTimestamp"] = "2026-03-02T09:50:00Z"
    status, found = problems(tmp_path, kube_list(*items), "--driver", DRIVER)
    assert status == 1
    assert [(p["kind"], p["volume"], p["nodes"], p["attachment"]) for p in found] == [
        ("stuck_migration", "pvc-vm", ["worker-1", "worker-2"], "csi-vm-2")
    ]
    assert "past its timeout of 0:05:00" in found[0]["message"]
    status, _ = problems(tmp_path, kube_list(*items), "--driver", DRIVER, "--migration-timeout", "900")
    assert status == 0


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ('{"items": [', "not JSON: Expecting value at line 1, column 12"),
        ("[1, 2]", 'expected an object with an "items" array'),
        ('{"items": ' + "[" * 100_000, "nested too deeply"),
        ({"items": [7]}, "item 0: expected an object, found int"),
        ({"items": [{"metadata": {"name": "x"}}]}, 'item 0 ("x"): kind: missing'),
        (
            {"items": [node("worker-1"), {**volume_attachment("csi-x", "pv", "w", NOW), "spec": {"attacher": DRIVER}}]},
            'item 1 (VolumeAttachment "csi-x"): spec.nodeName: missing',
        ),
        (
            {"items": [volume_attachment("csi-x", "pv", "w", "yesterday")]},
            'item 0 (VolumeAttachment "csi-x"): metadata.creationTimestamp: not an RFC 3339 time: "yesterday"',
        ),
        (
            {"items": [{**persistent_volume("pv", ["ReadWriteOnce"]), "spec": {"accessModes": "ReadWriteOnce"}}]},
            'item 0 (PersistentVolume "pv"): spec.accessModes: expected list, found str',
        ),
        (
            {"items": [volume_attachment("csi-x", "pv", "n" * 200, NOW)]},
            'VolumeAttachment "csi-x": invalid node id: it is 200 bytes long; the limit is 128 bytes',
        ),
    ],
)
def test_malformed_input(tmp_path: Path, doc: Any, expected: str) -> None:
    status, out, err = run(tmp_path, doc)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"tether audit: {tmp_path / 'cluster.json'}: ")
    assert expected in err


def test_unreadable_files(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["audit", str(tmp_path / "missing.json")], out=out, err=err) == 2
    assert "cannot read it: No such file or directory" in err.getvalue()
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"items": ["caf\xe9"]}')
    err = io.StringIO()
    assert main(["audit", str(bad)], out=out, err=err) == 2
    assert "not UTF-8 text (bad byte at offset 15)" in err.getvalue()


def test_command_line_reads_stdin(tmp_path: Path) -> None:
    items = healthy_cluster() + [volume_attachment("csi-bad", "pvc-db", "worker-2", "2026-03-02T09:30:00Z")]
    done = subprocess.run(
        [sys.executable, "-m", "tether", "audit", "--driver", DRIVER, "--now", NOW],
        input=json.dumps(kube_list(*items)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "rwo_multi_attach" in done.stdout


def test_command_line_malformed_has_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether", "audit", "-"], input="{oops", capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "tether audit: <stdin>: not JSON: Expecting property name enclosed in double quotes at line 1, column 2\n"
