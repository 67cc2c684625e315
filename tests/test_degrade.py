"""Realistic degradations: drawn per source and seeded, recorded in every record and counted in
the manifest; the same seed gives byte-identical records; the real-video benchmark path."""

import collections
import json
import os

import numpy as np
import pytest
from conftest import make_video, smooth_image, write_png

from imagesr.core import degrade
from imagesr.core.records import decode_pair

FAST = ["--patch-size", "24", "--stride", "24", "--workers", "1", "--no-progress", "--eval-fraction", "0"]


def test_names_round_trip_and_draws_are_seeded():
    for d in (degrade.CLEAN, degrade.REAL_VIDEO, degrade.Degradation("lanczos", 0.6, 1.5, "h265", 30),
              degrade.Degradation("area", 0.0, 0.0, "jpeg", 75)):
        assert degrade.parse(d.name) == d
    assert degrade.REAL_VIDEO.name == "h264-crf23+bicubic"
    a = [degrade.draw("realistic", 0, f"s{i}", "video") for i in range(40)]
    assert a == [degrade.draw("realistic", 0, f"s{i}", "video") for i in range(40)]  # seeded
    assert a != [degrade.draw("realistic", 1, f"s{i}", "video") for i in range(40)]
    assert {d.codec for d in a} <= {"h264"} and len({d.kernel for d in a}) > 2
    assert {degrade.draw("realistic", 0, f"s{i}", "image").codec for i in range(10)} == {"jpeg"}
    mixed = [degrade.draw("mixed", 0, f"s{i}", "image") for i in range(200)]
    assert 60 < sum(d == degrade.CLEAN for d in mixed) < 140
    with pytest.raises(ValueError, match="unknown part"):
        degrade.parse("h264-crf23+nearest")


def test_apply_compresses_a_sequence_and_keeps_sizes():
    frames = [smooth_image(48, 66, seed=i) for i in range(5)]
    out = degrade.apply(frames, (32, 44), degrade.Degradation("bicubic", 0.5, 1.0, "h264", 30), seed=3)
    assert len(out) == 5 and all(f.shape == (32, 44, 3) and f.dtype == np.uint8 for f in out)
    again = degrade.apply(frames, (32, 44), degrade.Degradation("bicubic", 0.5, 1.0, "h264", 30), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))  # deterministic (one encoder thread)
    clean = degrade.apply(frames, (32, 44), degrade.CLEAN)
    assert np.abs(out[0].astype(int) - clean[0]).mean() > 0.5  # the degradation does something
    odd = degrade.apply([smooth_image(45, 63)], (15, 21), degrade.Degradation("area", codec="h264", quality=25))
    assert odd[0].shape == (15, 21, 3)  # odd LR sides through 4:2:0


def _media(tmp_path):
    d = tmp_path / "media"
    d.mkdir()
    for i in range(3):
        write_png(d / f"p{i}.png", smooth_image(72, 96, seed=i))
    make_video(d / "clip.mp4", frames=12, size=(72, 96), fps=10)
    return d


def test_realistic_records_are_reproducible_named_and_counted(tmp_path):
    from imagesr.pipelines import patch_job

    media = _media(tmp_path)
    outs = []
    for run in ("a", "b"):
        out = str(tmp_path / run)
        patch_job.run(["--input", str(media), "--output", out, "--scales", "2", "--degradation", "realistic",
                       "--frame-stride", "1", "--residual", *FAST])
        outs.append(out)
    files = lambda o: sorted(os.listdir(os.path.join(o, "Split-train")))  # noqa: E731
    assert files(outs[0]) == files(outs[1])
    for name in files(outs[0]):
        from imagesr.core.records import iter_tfrecord

        a = list(iter_tfrecord(os.path.join(outs[0], "Split-train", name)))
        b = list(iter_tfrecord(os.path.join(outs[1], "Split-train", name)))
        assert collections.Counter(a) == collections.Counter(b)  # byte-identical records
    manifest = json.load(open(os.path.join(outs[0], "manifest.json")))
    from imagesr.core.records import iter_tfrecord

    counted = collections.Counter()
    for name in files(outs[0]):
        for r in iter_tfrecord(os.path.join(outs[0], "Split-train", name)):
            p = decode_pair(r)
            counted[p.degradation] += 1
            assert p.residual is not None
    assert dict(counted) == manifest["counts"]["pairs_by_degradation"]
    assert "clean" not in counted and any(k.startswith("jpeg-q") for k in counted)
    assert any(k.startswith("h264-crf") for k in counted)  # the video, as a sequence
    families = manifest["counts"]["pairs_by_degradation_family"]
    assert set(families) <= {"jpeg", "h264", "h265"} and sum(families.values()) == sum(counted.values())
    assert families["jpeg"] == sum(n for k, n in counted.items() if k.startswith("jpeg-"))
    for st in manifest["inputs"]:
        assert st["degradation"] == degrade.draw("realistic", 0, st["source"], st["kind"]).name


def test_evaluate_on_the_real_video_path(tmp_path, capsys):
    from imagesr import cli

    for i in range(2):
        write_png(tmp_path / f"b{i}.png", smooth_image(60, 90, seed=i))
    assert cli.main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path), "--scales", "1.5", "--json",
                     "--degradation", "h264-crf23+bicubic"]) == 0
    real = json.loads(capsys.readouterr().out)
    assert cli.main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path), "--scales", "1.5", "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert real["degradation"] == "h264-crf23+bicubic" and clean["degradation"] == "clean"
    assert real["results"][0]["psnr_y"] < clean["results"][0]["psnr_y"]  # the codec costs quality


@pytest.mark.parametrize("name,message", [("h264-crfx", "needs a number"), ("jpeg-q", "needs a number"),
                                          ("bicubic+noisenan", "finite"), ("bicubic+blur-1", "not negative"),
                                          ("h264-crf23+nearest", "unknown part")])
def test_a_malformed_degradation_name_is_one_line(tmp_path, capsys, name, message):
    from imagesr import cli
    from imagesr.core.media import write_image

    folder = tmp_path / "hr"
    folder.mkdir()
    write_image(str(folder / "a.png"), np.zeros((24, 24, 3), np.uint8))
    rc = cli.main(["evaluate", "--model", "bicubic", "--dataset", str(folder), "--degradation", name])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and name in err[0] and message in err[0], err


def test_evaluate_through_h265(tmp_path, capsys):
    """H.265 is a degradation to evaluate on where ffmpeg has libx265 (the patch job draws H.264)."""
    from imagesr import cli

    if not degrade.has_h265():
        pytest.skip("this ffmpeg has no libx265")
    for i in range(2):
        write_png(tmp_path / f"b{i}.png", smooth_image(60, 90, seed=i))
    assert cli.main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path), "--scales", "1.5", "--json",
                     "--degradation", "h265-crf35+lanczos"]) == 0
    h265 = json.loads(capsys.readouterr().out)
    assert cli.main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path), "--scales", "1.5", "--json",
                     "--degradation", "lanczos"]) == 0
    uncompressed = json.loads(capsys.readouterr().out)
    assert h265["degradation"] == "h265-crf35+lanczos"
    assert h265["results"][0]["psnr_y"] < uncompressed["results"][0]["psnr_y"] - 0.1  # the codec costs quality
    assert all(degrade.draw("realistic", seed, f"v/{seed}", "video").codec == "h264" for seed in range(40))
