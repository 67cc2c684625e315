"""The dataset on disk and the file-system layer (imagesr.core.dataset, imagesr.core.fs): one
definition of the layout for every stage, counting without Beam, local and gs:// alike, and
"remote" meaning a URL scheme everywhere."""

import json
import os
import subprocess
import sys

import pytest
from test_training import make_dataset

from imagesr.core import dataset, fs
from imagesr.core.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _finish(root, counts):
    """A manifest as the Beam writer leaves it (only the part the readers use)."""
    with open(os.path.join(root, dataset.MANIFEST), "w") as f:
        json.dump({"counts": {"pairs_by_split": counts}, "inputs": []}, f)


def test_record_files_and_count_on_a_local_dataset(tmp_path):
    root = str(tmp_path / "ds")
    make_dataset(root, n_images=3)
    train = dataset.record_files(root, "train")
    assert train and all(os.sep + dataset.split_name("train") + os.sep in f for f in train)
    counts = dataset.count_records(root)["records"]
    assert counts["train"] > 0 and counts["eval"] > 0
    assert dataset.count_records(root)["match"] is None  # no manifest: nothing to compare
    _finish(root, counts)
    assert dataset.record_files(root, "train") == train  # the manifest is never taken for records
    assert dataset.count_records(root)["match"] is True
    _finish(root, dict(counts, train=counts["train"] + 1))
    assert dataset.count_records(root)["match"] is False


def test_dataset_errors_name_the_place(tmp_path):
    with pytest.raises(dataset.DatasetError, match="no such examples folder"):
        dataset.record_files(str(tmp_path / "nope"), "train")
    root = tmp_path / "ds"
    (root / "Split-train").mkdir(parents=True)
    with pytest.raises(dataset.DatasetError, match="no Split-eval/ folder"):
        dataset.record_files(str(root), "eval")
    with pytest.raises(dataset.DatasetError, match="Split-train: no TFRecord files"):
        dataset.record_files(str(root), "train")
    (tmp_path / "file").write_text("x")
    with pytest.raises(dataset.DatasetError, match="not a folder"):
        dataset.count_records(str(tmp_path / "file"))
    with pytest.raises(dataset.DatasetError, match="not a patch dataset"):
        dataset.count_records(str(tmp_path / "ds"))


def test_records_count_needs_no_beam(tmp_path):
    """`imagesr records count` reads the files itself: Beam is never imported for it."""
    root = str(tmp_path / "ds")
    make_dataset(root, n_images=2)
    code = ("import sys, imagesr.cli as c\n"
            "rc = c.main(['records', 'count', sys.argv[1], '--json'])\n"
            "assert 'apache_beam' not in sys.modules, 'Beam was imported'\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code, root], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["total"] == out["records"]["train"] + out["records"]["eval"] > 0


def test_remote_means_a_url_scheme():
    assert fs.is_remote("gs://b/k") and fs.is_remote("s3://b/k") and fs.is_remote("HTTPS://x/y")
    assert not fs.is_remote("/data/a:b.png") and not fs.is_remote("rel/x") and not fs.is_remote("C:/x")
    with pytest.raises(UserError, match=r"s3://b/k: s3:// is not supported here"):
        fs.exists("s3://b/k")
    assert fs.join("gs://b/", "a", "/c") == "gs://b/a/c"


def test_local_or_gcs_and_beam_fs_are_one_protocol(tmp_path):
    pytest.importorskip("apache_beam")
    from imagesr.components.beam.patch_transform import BeamFS

    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "e" / "x.png").write_bytes(b"png")
    names = [n for n in dir(fs.FileSystem) if not n.startswith("_")]
    for impl in (fs.LOCAL_OR_GCS, BeamFS()):
        assert all(callable(getattr(impl, n, None)) for n in names), (impl, names)
        assert impl.isdir(str(tmp_path / "d")) and not impl.isdir(str(tmp_path / "d" / "e" / "x.png"))
        assert impl.list_files(str(tmp_path / "d")) == [str(tmp_path / "d" / "e" / "x.png")]
        with impl.open(str(tmp_path / "d" / "e" / "x.png")) as f:
            assert f.read() == b"png"


def test_dataset_on_gcs_without_beam(gcs_emulator, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="imagesr", credentials=AnonymousCredentials())
    bucket = client.create_bucket("imagesr-dataset")
    local = tmp_path / "ds"
    make_dataset(str(local), n_images=2)
    counts = dataset.count_records(str(local))["records"]
    _finish(str(local), counts)
    fs.copy_tree(str(local), "gs://imagesr-dataset/ds")
    assert bucket.name and fs.isdir("gs://imagesr-dataset/ds") and not fs.isdir("gs://imagesr-dataset/none")
    remote = dataset.record_files("gs://imagesr-dataset/ds", "train")
    assert [f.rsplit("/", 1)[-1] for f in remote] == sorted(os.listdir(local / "Split-train"))
    got = dataset.count_records("gs://imagesr-dataset/ds")
    assert got["records"] == counts and got["match"] is True
    staged = dataset.staged_locally(remote, str(tmp_path / "staged"))
    assert all(os.path.isfile(p) for p in staged) and len(staged) == len(remote)


def test_a_scheme_beam_cannot_read_is_one_line(tmp_path, capsys):
    """`patches --input s3://...` where Beam has no s3 support: one line naming the input, no
    traceback, nothing written."""
    import importlib.util

    pytest.importorskip("apache_beam")
    if importlib.util.find_spec("boto3") is not None:
        pytest.skip("boto3 is installed: Beam would try to reach S3 (no test talks to the internet)")
    from imagesr import cli

    out = tmp_path / "o"
    assert cli.main(["patches", "--input", "s3://imagesr-none/x", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "imagesr: error: s3://imagesr-none/x: Beam cannot read it" in err and "Traceback" not in err
    assert not out.exists()
