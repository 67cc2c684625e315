"""Materialise the training sources of ``datasets/training_data.json`` from git clones of their
repositories, ready for ``imagesr patches``.

    git clone --bare https://github.com/elementary/wallpapers clones/elementary+wallpapers   # one per repository
    python datasets/extract.py --clones clones --dest /data/imagesr-train

Every file is read by its blob id (some exist only in older commits), so the copies are the
bytes the manifest names, whatever the repository's HEAD holds now. Photographs larger than
``--max-side`` are downscaled with the MATLAB bicubic (antialiased, the same kernel as the
degradations) and stored as PNG: a 4-6K wallpaper downscaled to DIV2K's size hides the JPEG
artefacts and soft focus of the original, which would otherwise become the "ground truth" a
model learns to reproduce. Video frames are copied as they are, in the DAVIS layout
(``DAVIS/JPEGImages/480p/<sequence>/00000.jpg``) that ``imagesr patches`` reads as sequences.

Output: ``DEST/<source>/...`` per source and ``DEST/extracted.json`` (per source: files written,
skipped with the reason, pixels). A file already there with the right content is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
from typing import Dict, List, Optional

MANIFEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "training_data.json")


def load_manifest(path: str = MANIFEST) -> Dict:
    with open(path) as f:
        return json.load(f)


def find_clone(clones: str, repository: str) -> Optional[str]:
    """A clone of ``owner/name`` under ``clones``: ``owner+name`` or ``name``, bare or not
    (``repo`` inside either also works)."""
    owner, name = repository.split("/")
    for base in (f"{owner}+{name}", name):
        for sub in ("", "repo", ".git"):
            d = os.path.join(clones, base, sub)
            if os.path.isfile(os.path.join(d, "HEAD")) and os.path.isdir(os.path.join(d, "objects")):
                return d
    return None


def read_blob(git_dir: str, blob: str) -> bytes:
    return subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "blob", blob], check=True,
                          capture_output=True).stdout


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def store_photo(data: bytes, dest: str, max_side: int) -> List[int]:
    """The photo as an 8-bit RGB PNG, downscaled (MATLAB bicubic, antialiased) so that its long
    side is at most ``max_side``; returns its [width, height]."""
    import numpy as np
    from PIL import Image, ImageOps

    from imagesr.core.resize import imresize

    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    h, w = rgb.shape[:2]
    if max(h, w) > max_side:
        f = max_side / max(h, w)
        rgb = imresize(rgb, size=(max(1, round(h * f)), max(1, round(w * f))))
    tmp = dest + ".partial.png"
    Image.fromarray(rgb).save(tmp, compress_level=6)
    os.replace(tmp, dest)
    return [int(rgb.shape[1]), int(rgb.shape[0])]


def extract(manifest: Dict, clones: str, dest: str, max_side: int, only: Optional[List[str]] = None) -> Dict:
    report: Dict = {}
    for source in manifest["sources"]:
        if "files" not in source or (only and source["name"] not in only):
            continue
        git_dir = find_clone(clones, source["repository"])
        if git_dir is None:
            print(f"extract: {source['name']}: no clone of {source['repository']} under {clones}; skipped",
                  file=sys.stderr)
            report[source["name"]] = {"written": 0, "skipped": [f"no clone of {source['repository']}"]}
            continue
        out = os.path.join(dest, source["name"])
        written, skipped, pixels = 0, [], 0
        for i, entry in enumerate(source["files"]):
            photo = source["kind"] == "photos"
            target = os.path.join(out, os.path.splitext(entry["path"].replace("/", "_"))[0] + ".png") if photo \
                else os.path.join(out, entry["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                data = read_blob(git_dir, entry["blob"])
            except subprocess.CalledProcessError as e:
                skipped.append(f"{entry['path']}: blob {entry['blob']} not in the clone ({e.stderr.decode().strip()})")
                continue
            if git_blob_id(data) != entry["blob"]:
                skipped.append(f"{entry['path']}: content does not match blob {entry['blob']}")
                continue
            if photo:
                if not os.path.exists(target):
                    entry_size = store_photo(data, target, max_side)
                else:
                    from PIL import Image

                    with Image.open(target) as im:
                        entry_size = list(im.size)
                pixels += entry_size[0] * entry_size[1]
            elif not os.path.exists(target):
                with open(target + ".partial", "wb") as f:
                    f.write(data)
                os.replace(target + ".partial", target)
            written += 1
            if (i + 1) % 50 == 0:
                print(f"extract: {source['name']}: {i + 1}/{len(source['files'])}", file=sys.stderr)
        report[source["name"]] = {"written": written, "skipped": skipped, "megapixels": round(pixels / 1e6, 1)}
        print(f"extract: {source['name']}: {written} files, {len(skipped)} skipped -> {out}", file=sys.stderr)
    with open(os.path.join(dest, "extracted.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clones", required=True, help="folder of git clones, one per repository (owner+name or name)")
    p.add_argument("--dest", required=True, help="where the sources go (one folder per source)")
    p.add_argument("--max-side", type=int, default=2040, help="long side of stored photos (default 2040, as DIV2K)")
    p.add_argument("--only", nargs="+", default=None, help="source names (default: all with files)")
    p.add_argument("--manifest", default=MANIFEST)
    args = p.parse_args(argv)
    report = extract(load_manifest(args.manifest), args.clones, args.dest, args.max_side, args.only)
    return 0 if all(not r["skipped"] for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
