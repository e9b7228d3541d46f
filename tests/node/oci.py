#!/usr/bin/env python3
"""Writes a single-layer OCI image layout as a tar, importable with `ctr images import`.

No registry is reachable and there is no docker here, so the node tier's images are written by
hand: one uncompressed layer, its config, a manifest and an index whose descriptor carries the
image's full name in `io.containerd.image.name` (containerd's importer takes the name from there)
and its tag in `org.opencontainers.image.ref.name` (the OCI spec's annotation). Every entry has
mtime 0 and owner 0:0, so the same inputs give the same digests.

    oci.py OUT.tar --name registry.k8s.io/pause:3.10 [--name ...] \
        [--entrypoint /pause] [--cmd sh] [--user 65535:65535] \
        [--file SRC:DEST] [--symlink DEST:TARGET] [--dir DEST]
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--name", action="append", required=True, help="full image reference")
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--user", default="")
    p.add_argument("--env", action="append", default=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    p.add_argument("--file", action="append", default=[], help="SRC:DEST, mode kept from SRC")
    p.add_argument("--symlink", action="append", default=[], help="DEST:TARGET")
    p.add_argument("--dir", action="append", default=[], help="DEST (mode 0755; /tmp gets 1777)")
    return p.parse_args(argv)


def entry(name, kind, mode, **extra):
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    for key, value in extra.items():
        setattr(info, key, value)
    return info


def parents(path):
    parts = path.strip("/").split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def layer(args):
    """The layer's bytes: directories first (parents before children), then files and links."""
    dests = [f.split(":", 1)[1] for f in args.file] + [s.split(":", 1)[0] for s in args.symlink]
    dirs = set(args.dir)
    for dest in dests:
        dirs.update(parents(dest))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted({d.strip("/") for d in dirs}):
            tar.addfile(entry(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755))
        for spec in args.file:
            src, dest = spec.split(":", 1)
            with open(src, "rb") as f:
                data = f.read()
            mode = os.stat(src).st_mode & 0o7777
            tar.addfile(entry(dest, tarfile.REGTYPE, mode, size=len(data)), io.BytesIO(data))
        for spec in args.symlink:
            dest, target = spec.split(":", 1)
            tar.addfile(entry(dest, tarfile.SYMTYPE, 0o777, linkname=target))
    return buf.getvalue()


def blob(tar, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    tar.addfile(entry("blobs/sha256/" + digest[7:], tarfile.REGTYPE, 0o644, size=len(data)), io.BytesIO(data))
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def main(argv):
    args = parse_args(argv)
    layer_bytes = layer(args)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {k: v for k, v in {
            "Entrypoint": args.entrypoint or None,
            "Cmd": args.cmd or None,
            "User": args.user or None,
            "Env": args.env,
        }.items() if v},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]},
    }
    with tarfile.open(args.out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        layout = canonical({"imageLayoutVersion": "1.0.0"})
        tar.addfile(entry("oci-layout", tarfile.REGTYPE, 0o644, size=len(layout)), io.BytesIO(layout))
        tar.addfile(entry("blobs", tarfile.DIRTYPE, 0o755))
        tar.addfile(entry("blobs/sha256", tarfile.DIRTYPE, 0o755))
        layer_desc = blob(tar, layer_bytes, "application/vnd.oci.image.layer.v1.tar")
        config_desc = blob(tar, canonical(config), "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        manifest_desc = blob(tar, canonical(manifest), "application/vnd.oci.image.manifest.v1+json")
        manifests = []
        for name in args.name:
            desc = dict(manifest_desc, platform={"architecture": "amd64", "os": "linux"})
            desc["annotations"] = {"io.containerd.image.name": name,
                                   "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
            manifests.append(desc)
        index = canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": manifests})
        tar.addfile(entry("index.json", tarfile.REGTYPE, 0o644, size=len(index)), io.BytesIO(index))


if __name__ == "__main__":
    main(sys.argv[1:])
