#!/usr/bin/env python3
"""The two images the lab's pods run, built without a registry as docker-archive
tars that `ctr -n k8s.io images import` takes:
  OUTDIR/pause.tar    localhost/pause:3.4.1    (Kubernetes' own pause.c, static)
  OUTDIR/busybox.tar  localhost/busybox:1.35   (Debian's busybox-static and its applets)
Usage: kubernetes-images.py OUTDIR PAUSE_BINARY"""
import hashlib
import io
import json
import os
import sys
import tarfile


def tar_bytes(entries):
    """entries: (path, bytes | None for a directory | str for a symlink target, mode)"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.mode, info.mtime = mode, 0
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_image(path, tag, entries, config):
    layer = tar_bytes(entries)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": config,
                      "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
    outer = [("layer.tar", layer, 0o644), (cfg_name, cfg, 0o644), ("manifest.json", manifest, 0o644)]
    with open(path + ".partial", "wb") as f:
        f.write(tar_bytes(outer))
    os.replace(path + ".partial", path)


def main():
    outdir, pause = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    with open(pause, "rb") as f:
        write_image(os.path.join(outdir, "pause.tar"), "localhost/pause:3.4.1", [("pause", f.read(), 0o755)],
                    {"Entrypoint": ["/pause"], "User": "65535:65535"})
    with open("/usr/bin/busybox", "rb") as f:
        busybox = f.read()
    entries = [("bin", None, 0o755), ("bin/busybox", busybox, 0o755), ("tmp", None, 0o1777), ("etc", None, 0o755),
               ("proc", None, 0o755), ("sys", None, 0o755), ("dev", None, 0o755)]
    for applet in ("sh", "ls", "cat", "ip", "ping", "sleep", "nc", "hostname", "ifconfig", "echo", "ps", "httpd", "nslookup", "wget"):
        entries.append(("bin/" + applet, "busybox", 0o777))
    write_image(os.path.join(outdir, "busybox.tar"), "localhost/busybox:1.35", entries, {"Cmd": ["sh"], "Env": ["PATH=/bin"]})


if __name__ == "__main__":
    main()
