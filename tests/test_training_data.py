"""The training-data manifest (datasets/training_data.json): every source has its provenance,
and no evaluation set (nor a sequence or clip the benchmarks hold out) is a training source."""

import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "datasets", "training_data.json")

# Standard SR / VSR evaluation sets and sets built from them (BSD100 = BSDS500 val; BSD68 and
# CBSD68 come from it; BSD400/CBSD432 contain val images).
EVALUATION_SETS = ("set5", "set14", "bsd100", "b100", "urban100", "manga109", "general100", "vid4", "reds4",
                   "kodak", "mcmaster", "cbsd68", "bsd68", "bsd400", "cbsd432", "sun-hays", "sunhays", "spmcs",
                   "udm10", "div2k_valid", "div2k-valid")
# DAVIS sequences that may be trained on: six of the eight DAVIS 2017 sequences the project keeps
# for development (dog and parkour are the real-video benchmark), and the DAVIS 2016 training split.
DAVIS_ALLOWED = {"blackswan", "bmx-trees", "camel", "car-roundabout", "goat", "libby",
                 "bmx-bumps", "boat", "bus", "car-turn", "dance-jump", "dog-agility", "elephant", "flamingo",
                 "hike", "hockey", "horsejump-low", "kite-walk", "lucia", "mallard-fly", "mallard-water",
                 "motorbike", "rhino", "rollerblade", "scooter-gray", "soccerball", "stroller", "surf", "swing",
                 "tennis", "train"}
HELD_OUT_CLIPS = ("cockatoo",)


def violations(manifest) -> list:
    """What in the manifest's training sources breaks the rules (empty: none)."""
    found = []
    for s in manifest["sources"]:
        where = s.get("name", "?")
        for key in ("name", "kind", "repository", "commit", "path", "licence", "count"):
            if not s.get(key):
                found.append(f"{where}: no {key}")
        if not re.fullmatch(r"[0-9a-f]{40}", str(s.get("commit", ""))):
            found.append(f"{where}: commit is not a full git id")
        if s.get("kind") in ("photos", "video frames") and "files" in s and len(s["files"]) != s["count"]:
            found.append(f"{where}: count {s['count']} but {len(s['files'])} files")
        texts = [s.get("name", ""), s.get("path", "")] + [f["path"] for f in s.get("files", [])]
        for t in texts:
            low = t.lower()
            for name in EVALUATION_SETS + HELD_OUT_CLIPS:
                if re.search(rf"(^|[^a-z0-9]){re.escape(name)}([^a-z0-9]|$)", low):
                    found.append(f"{where}: {t!r} names {name}")
            if re.search(r"bsds500/data/images/(val|test)/", low):
                found.append(f"{where}: {t!r} is BSDS500 val/test")
            m = re.search(r"jpegimages/[^/]+/([^/]+)/", low)
            if m and m.group(1) not in DAVIS_ALLOWED:
                found.append(f"{where}: DAVIS sequence {m.group(1)} is not allowed for training")
        for f in s.get("files", []):
            if not re.fullmatch(r"[0-9a-f]{40}", f.get("blob", "")):
                found.append(f"{where}: {f.get('path')}: no blob id")
    return sorted(set(found))


@pytest.fixture(scope="module")
def manifest():
    with open(MANIFEST) as f:
        return json.load(f)


def test_every_source_has_provenance_and_no_evaluation_set_is_trained_on(manifest):
    assert len(manifest["sources"]) >= 10
    assert violations(manifest) == []
    names = {s["name"] for s in manifest["sources"]}
    assert {"t91", "bsds500-train", "davis2016-train", "elementary-wallpapers"} <= names


@pytest.mark.parametrize("bad", [
    {"name": "set14", "path": "Set14/HR"},
    {"name": "extra", "path": "testsets/Urban100/img_001.png"},
    {"name": "bsd", "path": "BSDS500/data/images/val/"},
    {"name": "davis", "path": "DAVIS/JPEGImages/480p/parkour/ (held out)",
     "files": [{"path": "DAVIS/JPEGImages/480p/parkour/00000.jpg", "blob": "0" * 40}]},
    {"name": "clips", "path": "videos/cockatoo.mp4"},
])
def test_the_check_finds_an_evaluation_set(manifest, bad):
    entry = {"kind": "photos", "repository": "a/b", "commit": "f" * 40, "licence": "CC0", "count": 1,
             "files": [{"path": "x.png", "blob": "0" * 40}]}
    entry.update(bad)
    assert violations({"sources": manifest["sources"] + [entry]})
