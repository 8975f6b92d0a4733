#!/usr/bin/env python3
"""JSON and filesystem helpers for tests/integration/lib.sh (stdlib only).

usage: helpers.py COMMAND ARGS...

  image IMAGES_JSON NAME FIELD      print a field of the image named NAME
                                    (digest, config, platform, size, names, layers)
  layers IMAGES_JSON NAME           print the image's layer dirs, bottom first
  layer-digests IMAGES_JSON NAME    print the image's layer digests, bottom first
  layer-of IMAGES_JSON NAME PATH    print the topmost layer dir that holds PATH
  merged IMAGES_JSON NAME PATH      resolve PATH like overlayfs over the image's
                                    layers (whiteouts, opaque dirs); print the
                                    layer file that is visible, exit 3 if none
  names IMAGES_JSON                 print every name of every image
  count IMAGES_JSON                 print the number of images
  layout-digest LAYOUT              digest that the layout's tag points at (index or manifest)
  fixture-digest LAYOUT [ARCH]      manifest digest of an OCI layout (an index
                                    is resolved to ARCH, default amd64)
  fixture-config LAYOUT [ARCH]      config digest of that manifest
  fixture-layers LAYOUT [ARCH]      layer digests of that manifest
  store-check IMAGES_JSON STORE     every image's layer dirs exist and are not empty,
                                    its manifest and config blobs exist, every layer
                                    dir belongs to an image, tmp/ is empty
  json-check FILE KEY...            FILE is valid JSON with these top-level keys
  xattr PATH NAME                   print the xattr value (no symlink follow)
  ranges STATS_JSON PREFIX          print faultreg range requests whose path
                                    starts with PREFIX ("path range" lines)
  stat-count STATS_JSON KEY         print a counter from a /_stats document (0 if absent)
  hostile-case CASES_JSON CASE FIELD  print expect / acceptable (space-separated)

Exit status 2 with a message on stderr when NAME or PATH is not found.
"""
import json
import os
import stat
import sys


def die(msg, code=2):
    print("helpers: " + msg, file=sys.stderr)
    sys.exit(code)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        die("%s: %s" % (path, e))


def find_image(images, name):
    cands = [name]
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in name:
        cands.append(name + ":latest")
    for c in cands:
        for img in images:
            if c in img.get("names", []):
                return img
    have = [n for i in images for n in i.get("names", [])]
    die("no image named %s in the store (have: %s)" % (name, ", ".join(have) or "none"))


def is_whiteout(p):
    try:
        st = os.lstat(p)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(p):
    for n in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(p, n, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def merged(layers, path):
    """overlayfs lookup of PATH (relative, no symlink following)."""
    parts = [x for x in path.strip("/").split("/") if x]
    for top in reversed(layers):
        # walk the ancestors in this layer: a whiteout or a non-directory hides
        # everything below; an opaque ancestor stops the search after this layer
        stop = False
        hidden = False
        for i in range(1, len(parts)):
            anc = os.path.join(top, *parts[:i])
            if is_whiteout(anc):
                hidden = True
                break
            if os.path.lexists(anc) and not (os.path.isdir(anc) and not os.path.islink(anc)):
                hidden = True
                break
            if os.path.isdir(anc) and is_opaque(anc):
                stop = True
        if hidden:
            return None
        full = os.path.join(top, *parts)
        if is_whiteout(full):
            return None
        if os.path.lexists(full):
            return full
        if stop:
            return None
    return None


def fixture_manifest(layout, arch):
    idx = load(os.path.join(layout, "index.json"))
    desc = idx["manifests"][0]
    while True:
        blob = load(os.path.join(layout, "blobs", desc["digest"].replace(":", "/")))
        if "manifests" not in blob:
            return desc["digest"], blob
        for m in blob["manifests"]:
            if m.get("platform", {}).get("architecture") == arch:
                desc = m
                break
        else:
            die("%s: no %s manifest" % (layout, arch))


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    cmd, a = argv[1], argv[2:]
    if cmd in ("image", "layers", "layer-digests", "layer-of", "merged"):
        img = find_image(load(a[0]), a[1])
        if cmd == "image":
            v = img.get(a[2])
            print(json.dumps(v) if isinstance(v, (list, dict)) else v)
        elif cmd == "layers":
            for l in img["layers"]:
                print(l["path"])
        elif cmd == "layer-digests":
            for l in img["layers"]:
                print(l["digest"])
        elif cmd == "layer-of":
            rel = a[2].strip("/")
            for l in reversed(img["layers"]):
                if os.path.lexists(os.path.join(l["path"], rel)):
                    print(l["path"])
                    return 0
            die("no layer of %s holds %s" % (a[1], a[2]))
        else:
            got = merged([l["path"] for l in img["layers"]], a[2])
            if got is None:
                return 3
            print(got)
    elif cmd == "names":
        for i in load(a[0]):
            for n in i.get("names", []):
                print(n)
    elif cmd == "count":
        print(len(load(a[0])))
    elif cmd == "layout-digest":
        print(load(os.path.join(a[0], "index.json"))["manifests"][0]["digest"])
    elif cmd in ("fixture-digest", "fixture-config", "fixture-layers"):
        d, m = fixture_manifest(a[0], a[1] if len(a) > 1 else "amd64")
        if cmd == "fixture-digest":
            print(d)
        elif cmd == "fixture-config":
            print(m["config"]["digest"])
        else:
            for l in m["layers"]:
                print(l["digest"])
    elif cmd == "store-check":
        images, store = load(a[0]), a[1]
        probs, want = [], set()
        for img in images:
            nm = ",".join(img.get("names", [])) or img.get("digest")
            for key in ("digest", "config"):
                d = img.get(key) or ""
                if not os.path.isfile(os.path.join(store, "blobs", "sha256", d.split(":")[-1])):
                    probs.append("%s: %s blob %s missing" % (nm, key, d))
            for l in img.get("layers", []):
                hexd = l["digest"].split(":")[-1]
                want.add(hexd)
                p = l.get("path", "")
                if p != os.path.join(store, "layers", hexd, "diff"):
                    probs.append("%s: layer path %s is not under the store" % (nm, p))
                if not os.path.isdir(p) or not os.listdir(p):
                    probs.append("%s: layer dir %s missing or empty" % (nm, p))
        have = set(os.listdir(os.path.join(store, "layers")))
        for h in sorted(have - want):
            probs.append("layer dir layers/%s belongs to no image" % h)
        for h in sorted(have):
            if not os.path.isdir(os.path.join(store, "layers", h, "diff")):
                probs.append("layers/%s has no diff dir" % h)
        left = os.listdir(os.path.join(store, "tmp"))
        if left:
            probs.append("tmp/ is not empty: %s" % " ".join(sorted(left)))
        for x in probs:
            print(x)
        return 1 if probs else 0
    elif cmd == "json-check":
        j = load(a[0])
        for k in a[1:]:
            if not isinstance(j, dict) or k not in j:
                die("%s: no key %r in %s" % (a[0], k, json.dumps(j)[:300]))
    elif cmd == "xattr":
        try:
            sys.stdout.write(os.getxattr(a[0], a[1], follow_symlinks=False).decode())
        except OSError as e:
            die("getxattr %s %s: %s" % (a[0], a[1], e.strerror))
    elif cmd == "ranges":
        for r in load(a[0]).get("range_requests", []):
            if r.get("path", "").startswith(a[1]):
                print(r["path"], r.get("range"))
    elif cmd == "stat-count":
        v = load(a[0]).get(a[1], 0)
        print(v if isinstance(v, int) else 0)
    elif cmd == "hostile-case":
        for c in load(a[0]):
            if c["case"] == a[1]:
                v = c[a[2]]
                print(" ".join(v) if isinstance(v, list) else v)
                return 0
        die("no case %s in %s" % (a[1], a[0]))
    else:
        die("unknown command " + cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
