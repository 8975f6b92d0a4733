#!/usr/bin/env python3
"""Write an OCI layout: the busybox fixture plus a top layer in which PATH
(dev or workspace) is a symlink to "/" -- an image trying to redirect a
mount or the workdir onto the host.  Usage: make_evil_image.py OUT BUSYBOX PATH"""
import io, json, os, shutil, sys, tarfile, hashlib, gzip

out, base, path = sys.argv[1:4]
shutil.copytree(base, out)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    ti = tarfile.TarInfo(path)
    ti.type = tarfile.SYMTYPE
    ti.linkname = "/"
    ti.mtime = 1577836800
    t.addfile(ti)
raw = buf.getvalue()
blob = gzip.compress(raw, mtime=0)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d
idx = json.load(open(os.path.join(out, "index.json")))
mdesc = idx["manifests"][0]
man = json.load(open(os.path.join(out, "blobs", "sha256", mdesc["digest"][7:])))
cfg = json.load(open(os.path.join(out, "blobs", "sha256", man["config"]["digest"][7:])))
cfg["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(raw).hexdigest())
cb = json.dumps(cfg, sort_keys=True).encode()
man["config"] = {"mediaType": man["config"]["mediaType"], "digest": put(cb), "size": len(cb)}
man["layers"].append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"
                      if "docker" in man.get("mediaType", "") else "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": put(blob), "size": len(blob)})
mb = json.dumps(man, sort_keys=True).encode()
mdesc = dict(mdesc, digest=put(mb), size=len(mb))
mdesc.pop("annotations", None)
idx["manifests"] = [mdesc]
json.dump(idx, open(os.path.join(out, "index.json"), "w"))
