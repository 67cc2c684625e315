"""The Beam patch job end to end with real runners (multi-process DirectRunner), a real
GCS-protocol server for gs://, and the Dataflow job description built offline."""

import collections
import glob
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import make_video, smooth_image, write_png
from PIL import Image

from imagesr.core import records
from imagesr.core.dataset import count_records
from imagesr.core.records import decode_pair
from imagesr.core.resize import crop_to_multiple, downscale
from imagesr.pipelines import patch_job
from imagesr.pipelines.patch_job import PatchJobError

pytestmark = pytest.mark.slow

FAST = ["--patch-size", "24", "--stride", "24", "--workers", "2", "--no-progress"]


def read_split(out, split):
    folder = os.path.join(out, f"Split-{split}")
    recs = []
    for name in sorted(os.listdir(folder)):
        recs.extend(records.iter_tfrecord(os.path.join(folder, name), verify=True))
    return recs


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    imgs = root / "photos"
    imgs.mkdir()
    for i in range(6):
        write_png(imgs / f"img{i}.png", smooth_image(72 + 12 * i, 96, seed=i))
    seq = root / "DAVIS" / "JPEGImages" / "480p" / "walk"
    seq.mkdir(parents=True)
    for i in range(6):
        Image.fromarray(smooth_image(60, 84, seed=10 + i)).save(seq / f"{i:05d}.jpg", quality=95)
    make_video(root / "clip.mp4", frames=10, size=(48, 72))
    return root


@pytest.fixture(scope="module")
def run_a(media_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run") / "a")
    manifest = patch_job.run(["--input", str(media_dir), "--output", out, "--scales", "2", "3",
                              "--eval-fraction", "0.3", "--residual", "--frame-stride", "2", *FAST])
    return out, manifest


def test_outputs_manifest_and_counts(run_a):
    out, manifest = run_a
    assert sorted(os.listdir(out)) == ["Split-eval", "Split-train", "dead_letter.jsonl", "manifest.json"]
    on_disk = json.load(open(os.path.join(out, "manifest.json")))
    assert on_disk["counts"] == manifest["counts"]
    c = manifest["counts"]
    assert c["sources"] == {"total": 8, "ok": 8, "partial": 0, "failed": 0}  # 6 images + 1 sequence + 1 video
    train, evl = read_split(out, "train"), read_split(out, "eval")
    assert len(train) == c["pairs_by_split"]["train"] and len(evl) == c["pairs_by_split"]["eval"]
    assert len(evl) > 0 and len(train) > 0
    by = collections.Counter((decode_pair(r).dataset, decode_pair(r).scale) for r in train + evl)
    per = c["pairs_by_dataset_split_scale"]
    for (ds, s), n in by.items():
        assert sum(per[ds][sp].get(str(int(s)), 0) for sp in per[ds]) == n
    assert count_records(out)["match"] is True
    # the Beam counters say the same
    counters = manifest["beam_counters"]
    assert counters["sources_ok"] == c["sources"]["ok"] and counters.get("sources_failed", 0) == c["sources"]["failed"]
    assert counters.get("sources_partial", 0) == c["sources"]["partial"]
    assert counters["pairs_train"] == len(train) and counters["pairs_eval"] == len(evl)
    assert counters["frames"] == c["frames"]
    # frame stride 2: frames 0, 2, 4 of the sequence, 0, 2, ..., 8 of the video
    frames = {st["source"]: st["frames"] for st in manifest["inputs"]}
    clip = next(k for k in frames if k.endswith("clip.mp4"))
    assert frames["davis/480p/walk"] == 3 and frames[clip] == 5


def test_shards_are_gzip_at_the_fastest_level(run_a):
    """The job writes at zlib level 1 (use_gzip_level): the gzip header's XFL byte says 4
    ("fastest"), while Beam's default level 6 would leave 0; the shards still read back whole."""
    out, manifest = run_a
    shards = glob.glob(os.path.join(out, "Split-*", "*.gz"))
    assert shards
    for shard in shards:
        with open(shard, "rb") as f:
            header = f.read(10)
        assert header[:2] == b"\x1f\x8b" and header[8] == 4, shard
    assert count_records(out)["match"] is True


def test_no_source_in_both_splits_and_lr_is_core_bicubic(run_a, media_dir):
    out, _ = run_a
    seen = {}
    for split in ("train", "eval"):
        for r in read_split(out, split):
            p = decode_pair(r)
            assert seen.setdefault(p.source, split) == split, f"{p.source} straddles the split"
            if p.source.endswith(".png"):
                hr_frame = np.asarray(Image.open(media_dir / "photos" / p.source.split("/")[-1]).convert("RGB"))
                hr = crop_to_multiple(hr_frame, p.scale)
                lr = downscale(hr, p.scale)
                ly, lx, n = int(round(p.y / p.scale)), int(round(p.x / p.scale)), p.lr.shape[0]
                np.testing.assert_array_equal(p.lr, lr[ly : ly + n, lx : lx + n])
                np.testing.assert_array_equal(p.hr, hr[p.y : p.y + 24, p.x : p.x + 24])
                assert p.residual is not None
    assert len(seen) == 8


def test_transform_with_test_pipeline(media_dir):
    """MediaToPatchPairs on its own, with TestPipeline and assert_that (in-memory runner)."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from imagesr.components.beam.patch_transform import MediaToPatchPairs
    from imagesr.core.patches import PatchOptions
    from imagesr.core.sources import Source

    good = Source("image", "photos", "photos/img0.png", "photos/img0.png", (str(media_dir / "photos" / "img0.png"),), split="eval")
    bad = Source("invalid", "photos", "photos/x.txt", "photos/x.txt", ("x.txt",), reason="not media")
    opts = PatchOptions(scales=(2,), patch_size=24, stride=24, min_std=0)
    with TestPipeline() as p:
        out = p | beam.Create([good.to_json(), bad.to_json()]) | MediaToPatchPairs(opts)
        assert_that(out["train"] | "CountTrain" >> beam.combiners.Count.Globally(), equal_to([0]), label="NoTrain")
        # 72x96 image, 24 px patches at stride 24: 3 x 4 = 12 pairs, all in eval
        assert_that(out["eval"] | "CountEval" >> beam.combiners.Count.Globally(), equal_to([12]), label="Eval")
        assert_that(out["status"] | beam.Map(lambda s: (s["source"], s["status"], s["pairs"])),
                    equal_to([("photos/img0.png", "ok", 12), ("photos/x.txt", "failed", 0)]), label="Statuses")


def test_same_seed_same_records(run_a, media_dir, tmp_path):
    out, _ = run_a
    again = str(tmp_path / "b")
    patch_job.run(["--input", str(media_dir), "--output", again, "--scales", "2", "3",
                   "--eval-fraction", "0.3", "--residual", "--frame-stride", "2", *FAST[:-3], "--workers", "1", "--no-progress"])
    for split in ("train", "eval"):
        assert collections.Counter(read_split(out, split)) == collections.Counter(read_split(again, split))


def test_existing_dataset_is_not_overwritten(run_a, media_dir):
    out, _ = run_a
    with pytest.raises(PatchJobError, match="already holds a finished dataset"):
        patch_job.run(["--input", str(media_dir), "--output", out, *FAST])


def test_bad_inputs_are_dead_lettered_and_counted(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    write_png(d / "good1.png", smooth_image(60, 60, seed=1))
    write_png(d / "good2.png", smooth_image(50, 70, seed=2))
    write_png(d / "gray.png", smooth_image(60, 60, seed=3)[..., 0])  # grayscale: good input
    write_png(d / "tiny.png", smooth_image(10, 12))  # smaller than a patch
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    full = make_video(tmp_path / "full.mp4", frames=20, size=(48, 48))
    (d / "truncated.mp4").write_bytes(open(full, "rb").read()[:3000])
    (d / "notes.txt").write_text("not media")
    out = str(tmp_path / "out")
    with pytest.raises(patch_job.PatchJobError, match="eval split got no pairs.*tiny.png"):
        patch_job.run(["--input", str(d), "--output", out, "--scales", "2", *FAST])  # its one eval source failed
    assert not os.path.exists(out)  # nothing written, not even the folder
    manifest = patch_job.run(["--input", str(d), "--output", out, "--scales", "2", *FAST, "--eval-fraction", "0"])
    st = {s["source"].split("/")[-1]: s for s in manifest["inputs"]}
    assert len(st) == 7
    assert {k for k, v in st.items() if v["status"] == "ok"} == {"good1.png", "good2.png", "gray.png"}
    dead = [json.loads(line) for line in open(os.path.join(out, "dead_letter.jsonl"))]
    reasons = {x["source"].split("/")[-1]: x["reason"] for x in dead}
    assert set(reasons) == {"tiny.png", "corrupt.png", "truncated.mp4", "notes.txt"}
    assert "smaller than a patch" in reasons["tiny.png"]
    assert "corrupt" in reasons["corrupt.png"] or "not an image" in reasons["corrupt.png"]
    assert "truncated.mp4" in reasons["truncated.mp4"]
    assert "not an image or video" in reasons["notes.txt"]
    c = manifest["counts"]
    assert c["sources"]["ok"] + c["sources"]["partial"] + c["sources"]["failed"] == c["sources"]["total"] == 7
    assert c["pairs"] == sum(s["pairs"] for s in manifest["inputs"]) == len(read_split(out, "train")) + len(read_split(out, "eval"))


def test_div2k_layout_with_official_lr(tmp_path):
    """DIV2K_*_HR images are sources; their LR_bicubic/X{s} files are used with --official-lr, never sources."""
    hr_dir = tmp_path / "DIV2K" / "DIV2K_train_HR"
    lr_dir = tmp_path / "DIV2K" / "DIV2K_train_LR_bicubic" / "X2"
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    official = {}
    for i in (1, 2):
        hr = smooth_image(48, 72, seed=i)
        write_png(hr_dir / f"{i:04d}.png", hr)
        lr = np.clip(downscale(hr, 2).astype(int) + 7, 0, 255).astype(np.uint8)  # marked: differs from our bicubic
        write_png(lr_dir / f"{i:04d}x2.png", lr)
        official[f"{i:04d}.png"] = lr
    out = str(tmp_path / "out")
    manifest = patch_job.run(["--input", str(tmp_path / "DIV2K"), "--output", out, "--scales", "2", "--official-lr",
                              "--eval-fraction", "0", *FAST])
    assert manifest["counts"]["sources"]["total"] == 2  # the LR files are not sources
    recs = [decode_pair(r) for r in read_split(out, "train")]
    assert recs and all(p.dataset == "DIV2K_train_HR" for p in recs)
    for p in recs:
        lr = official[p.source.split("/")[-1]]
        np.testing.assert_array_equal(p.lr, lr[p.y // 2 : p.y // 2 + 12, p.x // 2 : p.x // 2 + 12])
    plain = patch_job.run(["--input", str(tmp_path / "DIV2K"), "--output", str(tmp_path / "out2"), "--scales", "2",
                           "--eval-fraction", "0", *FAST])
    assert plain["counts"]["sources"]["total"] == 2
    p0 = decode_pair(read_split(str(tmp_path / "out2"), "train")[0])
    assert not np.array_equal(p0.lr, official[p0.source.split("/")[-1]][p0.y // 2 : p0.y // 2 + 12, p0.x // 2 : p0.x // 2 + 12])


def test_nothing_valid_fails_and_leaves_nothing(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.txt").write_text("x")
    write_png(d / "tiny.png", smooth_image(8, 8))
    out = tmp_path / "out"
    with pytest.raises(PatchJobError, match="no valid input: all 2 inputs failed.*smaller than a patch"):
        patch_job.run(["--input", str(d), "--output", str(out), *FAST])
    assert not out.exists() or os.listdir(out) == []


def test_bad_flags_and_missing_inputs(tmp_path):
    with pytest.raises(PatchJobError, match="does not exist"):
        patch_job.run(["--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), *FAST])
    (tmp_path / "empty").mkdir()
    with pytest.raises(PatchJobError, match="is empty"):
        patch_job.run(["--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o"), *FAST])
    with pytest.raises(PatchJobError, match="multiple of 3"):
        patch_job.run(["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--scales", "3", "--patch-size", "32"])
    with pytest.raises(PatchJobError, match="eval-fraction"):
        patch_job.run(["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--eval-fraction", "1.5"])
    with pytest.raises(SystemExit):
        patch_job.run(["--output", str(tmp_path / "o")])
    cli = subprocess.run([sys.executable, "-m", "imagesr.cli", "patches", "--input", str(tmp_path / "nope"),
                          "--output", str(tmp_path / "o")], capture_output=True, text=True)
    assert cli.returncode == 2 and "imagesr: error:" in cli.stderr and "Traceback" not in cli.stderr


# --------------------------------------------------------------------------- gs://


def test_gcs_round_trip(gcs_emulator, tmp_path):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    bucket = client.create_bucket("imagesr-test")
    for i in range(3):
        p = write_png(tmp_path / f"p{i}.png", smooth_image(60, 72, seed=i))
        bucket.blob(f"media/photos/p{i}.png").upload_from_filename(p)
    bucket.blob("media/clips/c.mp4").upload_from_filename(make_video(tmp_path / "c.mp4", frames=4, size=(48, 48)))
    bucket.blob("media/photos/readme.txt").upload_from_string("not media")
    manifest = patch_job.run(["--input", "gs://imagesr-test/media", "--output", "gs://imagesr-test/out",
                              "--scales", "2", "--eval-fraction", "0.3", *FAST])
    names = sorted(b.name for b in client.list_blobs("imagesr-test", prefix="out/"))
    assert "out/manifest.json" in names and "out/dead_letter.jsonl" in names
    assert not any(".staging" in n for n in names), names
    got = json.loads(bucket.blob("out/manifest.json").download_as_bytes())
    assert got["counts"] == manifest["counts"]
    assert got["counts"]["sources"] == {"total": 5, "ok": 4, "partial": 0, "failed": 1}
    total = 0
    for n in names:
        if n.startswith("out/Split-"):
            local = tmp_path / n.replace("/", "_")
            bucket.blob(n).download_to_filename(str(local))
            for r in records.iter_tfrecord(str(local), verify=True):
                p = decode_pair(r)
                assert p.hr.shape == (24, 24, 3) and p.lr.shape == (12, 12, 3)
                total += 1
    assert total == got["counts"]["pairs"] > 0
    assert count_records("gs://imagesr-test/out")["match"] is True


# --------------------------------------------------------------------------- Dataflow


def test_dataflow_job_description_offline(tmp_path):
    """The Dataflow job is built (options, setup file, steps) without being submitted."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import GoogleCloudOptions, SetupOptions, TestOptions, WorkerOptions
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    from imagesr.core.patches import PatchOptions

    args, beam_argv = patch_job.build_parser().parse_known_args([
        "--input", "gs://bucket/media", "--output", "gs://bucket/patches", "--runner", "DataflowRunner",
        "--project", "my-project", "--region", "europe-west4", "--temp_location", "gs://bucket/tmp",
        "--machine_type", "n2-highcpu-16", "--max_num_workers", "50"])
    opts = patch_job.pipeline_options(args, beam_argv)
    assert opts.view_as(SetupOptions).setup_file.endswith("setup.py")  # ships imagesr to the workers
    assert os.path.exists(opts.view_as(SetupOptions).setup_file)
    assert opts.view_as(WorkerOptions).machine_type == "n2-highcpu-16"
    assert opts.view_as(WorkerOptions).max_num_workers == 50
    assert opts.view_as(GoogleCloudOptions).job_name.startswith("imagesr-patches-")
    opts.view_as(TestOptions).dry_run = True
    opts.view_as(SetupOptions).setup_file = None  # no sdist build in a unit test
    p = beam.Pipeline(runner=DataflowRunner(), options=opts)
    source = {"kind": "image", "dataset": "d", "source_id": "d/a.png", "split_key": "d/a.png",
              "paths": ["gs://bucket/media/a.png"], "split": "train"}
    patch_job.build_pipeline(p, [source], PatchOptions(), "gs://bucket/patches/.staging-x")
    job = p.run().job
    transforms = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    for step in ("Sources", "MediaToPatchPairs/SpreadSources", "MediaToPatchPairs/DegradeAndCut",
                 "WriteTrain/Write/WriteImpl/WriteBundles", "WriteEval/Write/WriteImpl/WriteBundles",
                 "WriteStatuses/Write/WriteImpl/WriteBundles"):
        assert step in transforms, step
    assert job.proto.name.startswith("imagesr-patches-")
    assert job.options.view_as(GoogleCloudOptions).region == "europe-west4"
    assert job.options.view_as(GoogleCloudOptions).project == "my-project"


def test_progress_weighs_sources_by_their_work(media_dir, tmp_path, capsys):
    """The ETA counts megapixels, not sources: the estimate from headers equals what the
    job decodes, for an image, a DAVIS sequence and a video alike."""
    from imagesr.components.beam.patch_dataset import MarkerProgress
    from imagesr.components.beam.patch_transform import _write_progress
    from imagesr.core.patches import PatchOptions
    from imagesr.core.sources import assign_splits, discover, estimated_megapixels, process_source

    sources = assign_splits(discover([str(media_dir)]), 0.3)
    assert {s.kind for s in sources} == {"image", "frames", "video"}
    opts = PatchOptions(scales=(2,), patch_size=24, stride=24)
    statuses = {}
    for src in sources:
        st = process_source(src, opts, frame_stride=2, max_frames=4).status
        assert estimated_megapixels(src, frame_stride=2, max_frames=4) == pytest.approx(st["megapixels"], abs=1e-4)
        statuses[src.source_id] = st

    marker = MarkerProgress(str(tmp_path), [s.to_json() for s in sources], frame_stride=2, max_frames=4)
    marker._estimate()
    video = next(s.source_id for s in sources if s.kind == "video")
    _write_progress(str(tmp_path), statuses[video])
    # 10 s elapsed, counted from now: the header probes above take real time (seconds on a
    # loaded machine), which would otherwise inflate the ETA by that time over the share
    before = time.perf_counter()
    marker.line.t0 = before - 10
    marker._show()
    slack = time.perf_counter() - before  # _show's own time counts as elapsed (long on a loaded machine)
    line = capsys.readouterr().err
    share = statuses[video]["megapixels"] / sum(st["megapixels"] for st in statuses.values())
    assert f"1/{len(sources)} sources ({share:.0%} of the work)" in line
    m, sec = map(int, re.search(r"ETA (\d+):(\d\d)", line).groups())
    eta = 60 * m + sec  # 10 s (plus the slack) for `share` of the work, rounded to a second
    assert 10 * (1 - share) / share - 1 <= eta <= (10 + slack) * (1 - share) / share + 1, (eta, share, slack)


def test_progress_line_eta_from_the_fraction_of_work(capsys):
    from imagesr.core.progress import ProgressLine

    line = ProgressLine("job", total=4, unit="sources")
    line.t0 -= 30
    line.update(1, force=True, fraction=0.75)  # 1 source of 4, but 3/4 of the work
    assert "1/4 sources (75% of the work)" in capsys.readouterr().err
    line.update(1, force=True, fraction=0.75)
    assert "ETA 0:10" in capsys.readouterr().err
    line.update(1, force=True)  # no fraction: by items, 3 more at 1 per 30 s
    assert "ETA 1:30" in capsys.readouterr().err


def test_a_source_that_fails_halfway_keeps_its_good_frames_marked_partial(tmp_path):
    """Records leave the worker frame by frame, so a video cut short has already written the
    pairs of the frames before the cut: they are kept, counted, and the source is marked
    ``partial`` (manifest and dead letters) with the reason; counts equal the records."""
    full = make_video(tmp_path / "full.mkv", frames=30, size=(96, 128), fps=10, extra_args=["-g", "5"])
    cut = tmp_path / "media" / "cut.mkv"
    cut.parent.mkdir()
    data = open(full, "rb").read()
    cut.write_bytes(data[: len(data) * 45 // 100])
    out = str(tmp_path / "out")
    manifest = patch_job.run(["--input", str(cut.parent), "--output", out, "--scales", "2", "--frame-stride", "1",
                              "--eval-fraction", "0", *FAST])
    (entry,) = manifest["inputs"]
    assert entry["status"] == "partial" and "truncated" in entry["reason"] and 0 < entry["frames"] < 30
    assert manifest["counts"]["sources"] == {"total": 1, "ok": 0, "partial": 1, "failed": 0}
    records = read_split(out, "train")
    assert entry["pairs"] == len(records) == manifest["counts"]["pairs"] > 0
    assert {decode_pair(r).frame for r in records} == set(range(entry["frames"]))
    (dead,) = [json.loads(line) for line in open(os.path.join(out, "dead_letter.jsonl"))]
    assert dead["status"] == "partial" and dead["pairs_kept"] == len(records)


def test_a_flag_neither_ours_nor_beams_is_refused(tmp_path):
    """Beam only logs that it discards arguments it does not know: a mistyped option would pass
    unnoticed. It is refused, naming it; Beam's own options pass."""
    write_png(tmp_path / "a.png", smooth_image(64, 64))
    with pytest.raises(PatchJobError, match="Beam pipeline options\\): --maxworkers$"):
        patch_job.run(["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--maxworkers", "4",
                       "--max_num_workers", "2"])
    assert not (tmp_path / "o").exists()
