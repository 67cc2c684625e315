"""The bad-input corpus: what a hostile but realistic user does to every command. Each case
checks the exit status, that the message is one line naming the file (or the option), and
what is on disk afterwards: inputs untouched, no partial or stale output, no temporary
leftovers. Real processes where it matters (signals, a second run holding an output)."""

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, make_video, smooth_image, write_png

from imagesr import cli
from imagesr.core.errors import UserError
from imagesr.core.media import iter_video_frames, probe_video
from imagesr.core.outputs import OutputLock

H, W = 48, 64
FAST = ["--patch-size", "24", "--stride", "24", "--workers", "1", "--no-progress"]


def _digest(path):
    if os.path.isdir(path):
        return {n: _digest(os.path.join(path, n)) for n in sorted(os.listdir(path))}
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def _run(capsys, *argv):
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors (a flag's value): usage line + one error line
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line(err, *needles):
    """The error is one line (progress and log lines aside) holding every needle; no traceback.
    Only imagesr's own lines count: libraries log lines with "error:" of their own (gRPC's
    "epoll_wait error: Bad file descriptor" under load)."""
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("imagesr") and "error:" in ln]
    assert len(lines) == 1, err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    assert "Traceback" not in err
    return lines[0]


def _leftovers(folder):
    return sorted(n for n in os.listdir(folder) if ".partial" in n or n.endswith(".imagesr-lock")
                  or n.startswith(".staging-"))


def _as_foreground():
    """In the child before exec: SIGINT as a terminal's foreground command has it. A shell runs
    background commands (`bash .ci/run &`, nohup) with SIGINT ignored, children inherit that, and
    Python then never raises KeyboardInterrupt: the Ctrl-C tests would test the caller's shell."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*argv, env=None, **kw):
    """`imagesr ARGV` as a separate process, started as from a terminal (SIGINT delivered)."""
    return subprocess.Popen([sys.executable, "-m", "imagesr.cli", *map(str, argv)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_foreground, **kw)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=12, size=(H, W), fps=10)


# --------------------------------------------------------------------------- 1: inputs named like temporary outputs


@pytest.mark.parametrize("kind", ["image", "video", "folder"])
def test_an_input_named_like_a_temporary_output_survives(tmp_path, capsys, clip, kind):
    if kind == "image":
        src = write_png(tmp_path / "p.partial.png", smooth_image(H, W))
        out = tmp_path / "p.png"
    elif kind == "video":
        src = str(tmp_path / "bikes.partial.mp4")
        os.link(clip, src)
        out = tmp_path / "bikes.mp4"
    else:
        src = str(tmp_path / "seq.partial")
        os.mkdir(src)
        for i in range(2):
            write_png(os.path.join(src, f"{i:03d}.png"), smooth_image(H, W, seed=i))
        out = tmp_path / "seq"
    before = _digest(src)
    rc, stdout, err = _run(capsys, "upscale", src, "-o", out, "--model", "bicubic")
    assert rc == 0, err
    assert os.path.exists(out) and _digest(src) == before
    assert _leftovers(tmp_path) == [os.path.basename(src)]  # the input itself, and nothing else


# --------------------------------------------------------------------------- 2: one run per output


@pytest.mark.parametrize("target", ["up.mp4", "frames"])
def test_an_output_another_run_writes_is_refused(tmp_path, clip, target):
    """A second process writing the same output is refused at once; the first one's output
    and lock are untouched; once the holder has gone (even killed), the output is free."""
    out = tmp_path / target
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from imagesr.core.outputs import OutputLock; "
                               "OutputLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)", str(out)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = _cli("upscale", clip, "-o", out, "--model", "bicubic")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2
        _one_line(err, str(out), "another imagesr run")
        assert not out.exists() and [n for n in os.listdir(tmp_path) if ".partial" in n] == []
    finally:
        holder.kill()  # as kill -9: the kernel drops its lock; its lock file stays behind
        holder.wait()
    proc = _cli("upscale", clip, "-o", out, "--model", "bicubic")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.exists() and _leftovers(tmp_path) == []


def test_patches_into_an_output_another_run_writes_is_refused(tmp_path):
    src = tmp_path / "imgs"
    src.mkdir()
    write_png(src / "a.png", smooth_image(60, 60))
    out = tmp_path / "ds"
    out.mkdir()
    with OutputLock(str(out)):
        proc = _cli("patches", "--input", src, "--output", out, "--scales", "2", "--eval-fraction", "0", *FAST)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    _one_line(err, str(out), "another imagesr run")
    assert os.listdir(out) == []


# --------------------------------------------------------------------------- 3, 16: stale shards, killed runs


def test_patches_never_merges_into_an_unfinished_dataset(tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    write_png(src / "a.png", smooth_image(60, 60))
    out = tmp_path / "ds"
    (out / "Split-train").mkdir(parents=True)
    stale = gzip.compress(b"stale")
    (out / "Split-train" / "data_tfrecord-00000-of-00001.gz").write_bytes(stale)
    (out / ".staging-20260101T000000-abc123" / "Split-train").mkdir(parents=True)  # a kill -9 left it
    args = ["patches", "--input", src, "--output", out, "--scales", "2", "--eval-fraction", "0", *FAST]
    rc, _, err = _run(capsys, *args)
    assert rc == 2
    _one_line(err, str(out), "unfinished dataset", "--overwrite")
    rc, _, err = _run(capsys, *args, "--overwrite")
    assert rc == 0, err
    shards = os.listdir(out / "Split-train")
    assert all((out / "Split-train" / n).read_bytes() != stale for n in shards)  # replaced, not merged
    assert not any(n.startswith(".staging-") for n in os.listdir(out))
    proc = _cli("records", "count", out)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "manifest matches" in stdout, (stdout, err)


def test_patches_refuses_a_folder_of_other_files_and_a_file(tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    write_png(src / "a.png", smooth_image(60, 60))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    rc, _, err = _run(capsys, "patches", "--input", src, "--output", mine, "--scales", "2", *FAST, "--overwrite")
    assert rc == 2
    _one_line(err, str(mine), "notes.txt")
    assert os.listdir(mine) == ["notes.txt"]
    a_file = tmp_path / "ds.txt"
    a_file.write_text("x")
    rc, _, err = _run(capsys, "patches", "--input", src, "--output", a_file, "--scales", "2", *FAST)
    assert rc == 2
    _one_line(err, str(a_file), "not a folder")
    assert a_file.read_text() == "x"


def test_killed_patch_run_leaves_its_leftovers_in_one_place_and_the_next_run_removes_them(tmp_path):
    """kill -9 mid-run: nothing outside the output's staging folder (Beam's and the
    progress markers' temporary files included); the next run removes it and succeeds."""
    out, tmp = tmp_path / "ds", tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    src, proc = _busy_patch_job(tmp_path, out, env)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [n for n in os.listdir(out) if not n.startswith(".staging-")] == []  # nothing that looks like data
    proc = _cli("patches", "--input", src, "--output", out, "--scales", "2", *FAST, "--eval-fraction", "0", env=env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert not any(n.startswith(".staging-") for n in os.listdir(out)) and "manifest.json" in os.listdir(out)
    assert os.listdir(tmp) == []


def _busy_patch_job(tmp_path, out, env=None):
    """A patch job (its own process group) that has started staging and has work left."""
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(6):
        write_png(src / f"{i}.png", smooth_image(240, 320, seed=i))
    proc = _cli("patches", "--input", src, "--output", out, "--scales", "2", "3", "4", "--patch-size", "24",
                "--stride", "12", "--workers", "1", "--eval-fraction", "0", env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and any(n.startswith(".staging-") for n in os.listdir(out))):
        time.sleep(0.05)
    time.sleep(1.0)
    assert proc.poll() is None, "the job ended before it could be stopped"
    return src, proc


# --------------------------------------------------------------------------- 4: the same input twice


def test_the_same_input_given_three_ways_is_taken_once(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    for i in range(3):
        write_png(d / f"{i}.bmp", smooth_image(60, 60, seed=i))
    out = tmp_path / "ds"
    rc, _, err = _run(capsys, "patches", "--input", d, "--input", f"{d}/", "--input", f"{d}/*.bmp",
                      "--output", out, "--scales", "2", "--eval-fraction", "0.3", *FAST)
    assert rc == 0, err
    with open(out / "manifest.json") as f:
        manifest = json.load(f)
    assert len(manifest["inputs"]) == 3 and manifest["inputs_given_twice"] == 6
    assert len({i["path"] for i in manifest["inputs"]}) == 3


# --------------------------------------------------------------------------- 5, 6, 7: damaged and unusual video


def test_truncated_matroska_is_not_taken_as_complete(tmp_path, capsys):
    full = tmp_path / "full.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                    "-frames:v", "30", "-c:v", "libx264", "-g", "5", "-pix_fmt", "yuv420p", str(full)], check=True)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 40 // 100])
    out = tmp_path / "out"
    out.mkdir()
    rc, _, err = _run(capsys, "upscale", cut, "-o", out / "up.mp4", "--model", "bicubic")
    assert rc == 2
    _one_line(err, str(cut), "truncated")
    assert os.listdir(out) == []
    rc, _, err = _run(capsys, "patches", "--input", cut, "--input", full, "--output", out / "ds", "--scales", "2",
                      "--eval-fraction", "0", *FAST)
    assert rc == 0, err
    with open(out / "ds" / "manifest.json") as f:
        status = {os.path.basename(i["path"]): i for i in json.load(f)["inputs"]}
    assert status["cut.mkv"]["status"] != "ok" and "truncated" in status["cut.mkv"]["reason"]
    assert status["full.mkv"]["status"] == "ok"


def test_two_video_streams_decode_the_probed_one(tmp_path, capsys):
    """The first video stream is probed and decoded (ffmpeg alone would pick the larger)."""
    small = make_video(tmp_path / "small.mp4", frames=10, size=(H, W), fps=10)
    large = make_video(tmp_path / "large.mp4", frames=40, size=(96, 128), fps=10)
    both = tmp_path / "both.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", small, "-i", large, "-map", "0:v", "-map", "1:v",
                    "-c", "copy", str(both)], check=True)
    frames = np.stack(list(iter_video_frames(str(both))))
    assert frames.shape == (10, H, W, 3)
    assert np.array_equal(frames, np.stack(list(iter_video_frames(small))))
    rc, stdout, err = _run(capsys, "upscale", both, "-o", tmp_path / "up.mp4", "--model", "bicubic")
    assert rc == 0 and "upscaled 10 frames" in stdout, err


def _shown_at(t: float) -> int:
    """The frame of the variable-rate test clip on screen at ``t`` s (0-9 every 0.2 s, then
    10-29 every 0.05 s)."""
    return int(min(29, t // 0.2 if t < 2 else 10 + (t - 2) // 0.05))


def test_variable_frame_rate_stays_in_sync_with_its_audio(tmp_path, capsys):
    """Frames 0-9 span 2 s, frames 10-29 span 1 s: written at a constant rate, frame i of the
    output shows what the input showed at i / rate (repeated or dropped), not frame i."""
    levels = np.arange(30) * 8
    raw = b"".join(np.full((H, W, 3), lv, np.uint8).tobytes() for lv in levels)
    vfr = tmp_path / "vfr.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
                    "-r", "10", "-i", "pipe:", "-f", "lavfi", "-i", "sine=duration=3", "-vf",
                    "settb=1/1000,setpts=if(lt(N\\,10)\\,N*0.2\\,2+(N-10)*0.05)/TB", "-vsync", "vfr",
                    "-enc_time_base", "1:1000", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", "-c:a", "aac", str(vfr)], input=raw, check=True)
    info = probe_video(str(vfr))
    assert info.variable_rate and info.has_audio, info
    out = tmp_path / "up.mp4"
    rc, stdout, err = _run(capsys, "upscale", vfr, "-o", out, "--model", "bicubic", "--size", f"{2 * W}x{2 * H}")
    assert rc == 0, err
    assert "variable frame rate" in err and "audio copied" in stdout
    got = np.stack(list(iter_video_frames(str(out))))[:, H, W, 1].astype(int)
    rate = probe_video(str(out)).fps
    for i, level in enumerate(got):  # within half an output frame of the right moment
        t = i / rate
        near = {_shown_at(max(0.0, t + d)) for d in (-0.5 / rate, 0.0, 0.5 / rate)}
        assert min(abs(level - levels[k]) for k in near) <= 10, (i, t, level, near)
    # the input's duration (its last frame held as long as the container says), not 30 / rate
    assert info.duration - 1 / rate <= len(got) / rate <= info.duration + 0.5, (len(got), rate, info.duration)


# --------------------------------------------------------------------------- 9: smaller ones


def test_alpha_is_reported(tmp_path, capsys):
    rgba = np.dstack([smooth_image(H, W), np.full((H, W), 128, np.uint8)])
    src = write_png(tmp_path / "a.png", rgba)
    rc, _, err = _run(capsys, "upscale", src, "-o", tmp_path / "b.png", "--model", "bicubic")
    assert rc == 0 and "transparency is composited on white" in err and "a.png" in err


def test_records_count_on_what_is_not_a_dataset(tmp_path, capsys):
    rc, _, err = _run(capsys, "records", "count", tmp_path / "nope")
    assert rc == 2
    _one_line(err, str(tmp_path / "nope"), "no such folder")
    shard = tmp_path / "ds" / "Split-train" / "data_tfrecord-00000-of-00001.gz"
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(300))  # gzip magic, then garbage
    rc, _, err = _run(capsys, "records", "count", tmp_path / "ds")
    assert rc == 2
    _one_line(err, str(shard), "corrupt")


def test_patch_size_larger_than_every_input_leaves_no_folder(tmp_path, capsys):
    src = tmp_path / "imgs"
    src.mkdir()
    write_png(src / "a.png", smooth_image(40, 40))
    rc, _, err = _run(capsys, "patches", "--input", src, "--output", tmp_path / "ds", "--scales", "2",
                      "--patch-size", "96", "--stride", "96", "--workers", "1", "--no-progress")
    assert rc == 2
    _one_line(err, "no valid input", "a.png")
    assert not (tmp_path / "ds").exists()


# --------------------------------------------------------------------------- 10, 11: hangs


def test_training_on_a_scale_the_records_lack_stops_at_once(tmp_path):
    from test_training import make_dataset

    data = make_dataset(str(tmp_path / "data"), scales=(2,), n_images=2)
    t = time.time()
    proc = _cli("train", "--examples", data, "--model", "vdsr", "--scales", "3", "--steps", "5", "--out", tmp_path / "run")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    _one_line(err, "x3", "x2")
    assert time.time() - t < 120 and not (tmp_path / "run").exists()


def test_tiny_tiles_are_refused(tmp_path, capsys):
    src = write_png(tmp_path / "a.png", smooth_image(H, W))
    rc, _, err = _run(capsys, "upscale", src, "-o", tmp_path / "b.png", "--model", "bicubic", "--tile", "1")
    assert rc == 2
    _one_line(err, "--tile")
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


# --------------------------------------------------------------------------- 12, 14, 15: one line, not a traceback


@pytest.mark.parametrize("args,needle", [
    (["--size", "100000x100000"], "--size"),
    (["--scale", "inf"], "--scale"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "4000"], "--scale"),
    (["--fps", "inf"], "--fps"),
    (["--fps", "nan"], "--fps"),
    (["--fps", "0.0001"], "--fps"),
])
def test_absurd_numbers_are_one_line(tmp_path, capsys, args, needle):
    src = write_png(tmp_path / "a.png", smooth_image(H, W))
    rc, _, err = _run(capsys, "upscale", src, "-o", tmp_path / "b.mp4", "--model", "/no/such/model", *args)
    assert rc == 2
    _one_line(err, needle)  # about the number: checked before the (missing) model is looked at
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_outputs_that_cannot_be_written(tmp_path, capsys, clip):
    rc, _, err = _run(capsys, "upscale", clip, "-o", "/dev/null", "--model", "bicubic")
    assert rc == 2
    _one_line(err, "/dev/null", "not a regular file")
    for ext in (".webm", ".mpg", ".wmv"):
        rc, _, err = _run(capsys, "upscale", clip, "-o", tmp_path / f"up{ext}", "--model", "/no/such/model")
        assert rc == 2
        _one_line(err, f"up{ext}", "H.264")
    assert os.listdir(tmp_path) == []


def test_training_on_a_corrupt_shard_stops_before_training(tmp_path):
    from test_training import make_dataset

    data = make_dataset(str(tmp_path / "data"), scales=(2,), n_images=2)
    shard = os.path.join(data, "Split-train", "data_tfrecord-00000-of-00001.gz")
    blob = open(shard, "rb").read()
    with open(shard, "wb") as f:
        f.write(blob[: len(blob) * 2 // 3])  # the first records are fine, the rest is cut
    proc = _cli("train", "--examples", data, "--model", "vdsr", "--scales", "2", "--steps", "5", "--out", tmp_path / "run")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    _one_line(err, shard)
    assert not (tmp_path / "run").exists()


def test_runs_on_a_file_that_is_not_a_store(tmp_path, capsys):
    bogus = tmp_path / "metadata.sqlite"
    bogus.write_text("not a database")
    rc, _, err = _run(capsys, "runs", "show", "latest", "--metadata", bogus)
    assert rc == 2
    _one_line(err, str(bogus), "not an MLMD store")


def test_pipeline_config_errors_come_before_tfx(tmp_path):
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"inputs": [str(tmp_path)], "patch": {"scales": [2]},
                               "train": {"model": "subpixel", "scales": [2], "stpes": 10}}))
    proc = _cli("pipeline", "run", "--config", cfg, "--root", tmp_path / "root")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    _one_line(err, "stpes")
    cfg.write_text(json.dumps({"inputs": [str(tmp_path)], "patch": {"scales": [2]},
                               "train": {"model": "subpixel", "scales": [1.5]}}))
    proc = _cli("pipeline", "run", "--config", cfg, "--root", tmp_path / "root")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    _one_line(err, "x1.5", "x2")
    assert not (tmp_path / "root").exists()


def test_evaluate_skips_an_image_too_small_and_names_it(tmp_path):
    write_png(tmp_path / "big.png", smooth_image(64, 64))
    write_png(tmp_path / "tiny.png", smooth_image(12, 12))
    proc = _cli("evaluate", "--model", "bicubic", "--dataset", tmp_path, "--scales", "4", "--json")
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "tiny.png" in err and "skipped" in err
    res = json.loads(stdout)["results"][0]
    assert res["images"] == 1 and res["skipped"] == ["tiny.png"]


def test_global_flags_before_any_command(tmp_path):
    proc = _cli("-v", "patches", "--help")
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "--output" in stdout, err


# --------------------------------------------------------------------------- 12, 13: signals


@pytest.mark.parametrize("sig,status,word", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_upscale_stopped_by_a_signal_leaves_nothing(tmp_path, sig, status, word):
    long = make_video(tmp_path / "long.mp4", frames=400, size=(144, 192), fps=25)
    out = tmp_path / "out"
    out.mkdir()
    proc = _cli("upscale", long, "-o", out / "up.mp4", "--model", "bicubic", "--batch", "1")
    deadline = time.time() + 120
    while time.time() < deadline and not any(".partial" in n for n in os.listdir(out)):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert word in err.strip().splitlines()[-1] and "Traceback" not in err
    assert os.listdir(out) == []


def test_patches_interrupted_leaves_nothing(tmp_path):
    out = tmp_path / "ds"
    _, proc = _busy_patch_job(tmp_path, out)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err.strip().splitlines()[-1]
    assert not out.exists() or os.listdir(out) == []


def test_an_interrupted_command_exits_with_a_library_thread_still_waiting():
    """After Ctrl-C the command's clean-up has run; a non-daemon thread a library left waiting
    (Beam's job thread on a worker the same Ctrl-C killed while it started) must not hold the
    process open at exit."""
    code = ("import threading, imagesr.cli as c\n"
            "threading.Thread(target=threading.Event().wait).start()\n"
            "c.main = lambda argv=None: 130\n"
            "c.run()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 130, proc.stderr


# =========================================================================== round 3
# Each class of issue 24 with its example and a variant of our own.


def _shipped(name):
    from imagesr.core import shipped

    model = shipped.get(name)
    if model is None:
        pytest.skip(f"the shipped {name} model is not installed")
    return model.path


def _holding(path):
    """A separate process holding ``path``'s OutputLock until killed."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from imagesr.core.outputs import OutputLock; "
                               "OutputLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(300)", str(path)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


# --------------------------------------------------------------------------- 1: two pipeline runs on one root


def test_a_pipeline_run_on_a_root_another_run_holds_is_refused(tmp_path):
    """The example's second command (the concurrent pair itself is in test_tfx_pipeline): one
    line, exit 2, no run recorded and nothing written in the root."""
    root = tmp_path / "root"
    root.mkdir()
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"root": str(root), "evaluator": {"scales": [2]}}))
    holder = _holding(root / "metadata.sqlite")
    try:
        proc = _cli("pipeline", "run", "--config", cfg, "--import-model", _shipped("subpixel_x2"))
        _, err = proc.communicate(timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    _one_line(err, str(root), "another imagesr pipeline run")
    assert os.listdir(root) == [".metadata.sqlite.imagesr-lock"]  # the holder's (killed: its lock file stays)


def test_a_push_never_reuses_a_folder(tmp_path):
    """Variant: the push folders of the next seconds exist already (another pipeline pushing to
    the same place, or a second push within the second): each push takes a new one, created."""
    pytest.importorskip("tfx")
    from imagesr.components.tfx.push import claim_version, copy_model

    base = tmp_path / "serving"
    for t in range(1000, 1006):
        (base / str(t)).mkdir(parents=True)
    first = claim_version(str(base), now=1000)
    second = claim_version(str(base), now=1000)
    assert first == ("1006", str(base / "1006")) and second == ("1007", str(base / "1007"))
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "model.keras").write_bytes(b"k")
    (model / "variables" / "v").write_bytes(b"v")
    copy_model(str(model), first[1])
    assert _digest(first[1]) == _digest(model) and sorted(os.listdir(base)) == [str(t) for t in range(1000, 1008)]


# --------------------------------------------------------------------------- 2: train --out never replaces silently


@pytest.fixture(scope="module")
def patch_data(tmp_path_factory):
    from test_training import make_dataset

    return make_dataset(str(tmp_path_factory.mktemp("data")), scales=(2,), n_images=2)


TRAIN_FAST = ["--model", "subpixel", "--scales", "2", "--steps", "2", "--batch-size", "4", "--model-args",
              '{"width": 8, "blocks": 1}']


def test_train_into_an_existing_model_folder(tmp_path, capsys, patch_data):
    """Refused without --overwrite (the old model and its card untouched); with it the whole
    folder is replaced: no old card describes the new model."""
    out = tmp_path / "run"
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--out", out)
    assert rc == 0, err
    (out / "card.json").write_text('{"command": "an old model", "steps": 27008}')
    (out / "MODEL_CARD.md").write_text("# the old model")
    before = _digest(out)
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--seed", "1", "--out", out)
    assert rc == 2
    _one_line(err, str(out), "--overwrite")
    assert _digest(out) == before
    rc, stdout, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--seed", "1", "--out", out,
                           "--overwrite")
    assert rc == 0, err
    assert sorted(os.listdir(out)) == ["logs", "model.keras", "saved_model", "train_summary.json"]
    assert _digest(out / "model.keras") != before["model.keras"]
    assert json.loads(stdout)["exported"]["keras"] == str(out / "model.keras")
    assert _leftovers(tmp_path) == []


def test_train_out_a_file_or_a_folder_of_other_files(tmp_path, capsys, patch_data):
    a_file = tmp_path / "model.txt"
    a_file.write_text("mine")
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--out", a_file)
    assert rc == 2
    _one_line(err, str(a_file), "not a folder")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--out", mine, "--overwrite")
    assert rc == 2
    _one_line(err, str(mine), "notes.txt")
    assert a_file.read_text() == "mine" and os.listdir(mine) == ["notes.txt"] and _leftovers(tmp_path) == []


def test_a_failed_training_with_overwrite_keeps_the_old_model(tmp_path, capsys, patch_data):
    """Variant: --overwrite replaces a model only with a complete one; a run that fails leaves
    the old folder as it was."""
    out = tmp_path / "run"
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--out", out)
    assert rc == 0, err
    before = _digest(out)
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--scales", "3", "--out", out,
                      "--overwrite")
    assert rc == 2
    _one_line(err, "x3")
    assert _digest(out) == before and _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- 7: pipeline names are names


@pytest.mark.parametrize("name", ["{tmp}/abs/dir", "../../x", "a/b", ".."])
def test_a_pipeline_name_that_is_a_path_is_refused(tmp_path, capsys, name):
    """The example ("/abs/dir": every artefact outside the root, here an absolute path in the
    test's folder) and variants; nothing is written anywhere."""
    name = name.format(tmp=tmp_path)
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"name": name, "inputs": [str(tmp_path / "media")], "root": str(tmp_path / "r" / "root")}))
    rc, _, err = _run(capsys, "pipeline", "run", "--config", cfg)
    assert rc == 2
    _one_line(err, repr(name), "not a path")
    assert sorted(os.listdir(tmp_path)) == ["p.json"]


# --------------------------------------------------------------------------- 13, 3: every config value checked first


@pytest.mark.parametrize("section,values,needle", [
    ("evaluator", {"margin_db": "abc"}, "margin_db"),  # the example: it failed after 114 s of work
    ("evaluator", {"timing_input": [720]}, "timing_input"),
    ("evaluator", {"real_video": "h264-crfx"}, "h264-crfx"),
    ("train", {"model": "subpixel", "scales": [1.5], "learning_rate": float("nan")}, "learning_rate"),
    ("train", {"model": "subpixel", "scales": [1.5], "steps": "300"}, "steps"),
    ("train", {"model": "subpixel", "scales": [1.5], "model_args": {"width": "64"}}, "width"),
    ("patch", {"scales": [1.5], "eval_fraction": "0.1"}, "eval_fraction"),
    ("patch", {"scales": [1.5], "min_std": float("inf")}, "min_std"),
])
def test_a_config_value_of_the_wrong_type_fails_before_anything_runs(tmp_path, capsys, section, values, needle):
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"inputs": [str(tmp_path)], "root": str(tmp_path / "root"), section: values}))
    rc, _, err = _run(capsys, "pipeline", "run", "--config", cfg)
    assert rc == 2
    _one_line(err, needle, f"'{section}'")
    assert not (tmp_path / "root").exists()


def test_a_pipeline_root_that_is_a_file(tmp_path):
    root = tmp_path / "root"
    root.write_text("mine")
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"root": str(root), "evaluator": {"scales": [2]}}))
    proc = _cli("pipeline", "run", "--config", cfg, "--import-model", _shipped("subpixel_x2"))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    _one_line(err, str(root), "not a folder")
    assert root.read_text() == "mine"


# --------------------------------------------------------------------------- 14: an import run checks what it uses


def test_an_import_run_checks_only_what_it_uses(tmp_path):
    """An x2 model imported with an x2 evaluator: the default patch and train sections (x1.5)
    and the missing inputs are not its business; its evaluator section still is."""
    from imagesr.pipelines.config import load_config

    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps({"root": str(tmp_path / "root"), "evaluator": {"scales": [2]}}))
    assert load_config(str(cfg), importing=True).evaluator == {"scales": [2]}
    with pytest.raises(UserError, match="x1.5"):
        load_config(str(cfg))  # a run that trains still needs them consistent
    cfg.write_text(json.dumps({"root": str(tmp_path / "root"), "evaluator": {"scales": [2], "margin_db": "x"}}))
    with pytest.raises(UserError, match="margin_db"):
        load_config(str(cfg), importing=True)


# --------------------------------------------------------------------------- 3: NaN, divergence, JSON


def _strict_json(text):
    """JSON as RFC 8259 has it (Python's parser would take NaN and Infinity)."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_a_non_finite_learning_rate_is_refused(tmp_path, capsys, patch_data):
    for value in ("nan", "inf", "-1"):
        rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--learning-rate", value,
                          "--out", tmp_path / "run")
        assert rc == 2 and "--learning-rate" in err and "Traceback" not in err, err
    assert os.listdir(tmp_path) == []


def test_a_training_that_diverges_stops_and_exports_nothing(tmp_path, capsys, patch_data):
    rc, stdout, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST[:-4], "--steps", "30",
                           "--model-args", '{"width": 8, "blocks": 1}', "--learning-rate", "1e12", "--out", tmp_path / "run")
    assert rc == 2, err
    _one_line(err, "diverged", "nothing was exported")
    assert stdout == "" and os.listdir(tmp_path) == []


def _model_with_weights(path, fill):
    """A tiny x2 sub-pixel model whose weights are all ``fill`` (NaN: a diverged training;
    huge: one whose output overflows)."""
    from imagesr.training.models import build_model

    model = build_model("subpixel", scale=2, width=8, blocks=1)
    model.set_weights([np.full(w.shape, fill, np.float32) for w in model.get_weights()])
    model.save(str(path))
    return str(path)


@pytest.mark.parametrize("fill,needle", [(float("nan"), "weights are not finite"), (1e30, "output on a test frame")])
def test_a_model_that_cannot_make_finite_frames_is_refused(tmp_path, capsys, fill, needle):
    """The example (NaN weights upscaled to black frames, exit 0) and a variant: finite weights
    whose output overflows. Refused by upscale, evaluate, and the importer of a pipeline run."""
    model = _model_with_weights(tmp_path / "bad.keras", fill)
    src = write_png(tmp_path / "a.png", smooth_image(H, W))
    rc, _, err = _run(capsys, "upscale", src, "-o", tmp_path / "b.png", "--model", model)
    assert rc == 2
    _one_line(err, "bad.keras", needle)
    rc, _, err = _run(capsys, "evaluate", "--model", model, "--dataset", tmp_path)
    assert rc == 2
    _one_line(err, "bad.keras", needle)
    assert sorted(os.listdir(tmp_path)) == ["a.png", "bad.keras"]
    pytest.importorskip("tfx")
    from imagesr.components.tfx.model_importer import import_model

    with pytest.raises(UserError, match=needle):  # the ModelImporter fails: nothing is evaluated or pushed
        import_model(model, str(tmp_path / "imported"))


def test_json_summaries_are_json(tmp_path, capsys):
    """A flat image comes back exactly from bicubic: its PSNR is infinite, which Python's json
    wrote as Infinity (no other parser reads it). Variant: evaluate --json alike."""
    write_png(tmp_path / "flat.png", np.full((64, 64, 3), 77, np.uint8))
    rc, stdout, err = _run(capsys, "bench", "bicubic", "--dataset", tmp_path, "--scales", "2", "--json")
    assert rc == 0, err
    assert _strict_json(stdout)["results"][0]["psnr_y"] is None
    rc, stdout, err = _run(capsys, "evaluate", "--model", "bicubic", "--dataset", tmp_path, "--scales", "2", "--json")
    assert rc == 0, err
    assert _strict_json(stdout)["results"][0]["psnr_y"] is None


# --------------------------------------------------------------------------- 4: special files in input folders

MEMORY_LIMIT = 2 << 30  # address space of each process of a run below (a normal small run needs far less)


def _limited(*argv, timeout=300):
    """`imagesr ARGV` in its own session under MEMORY_LIMIT; killed (the whole group) if it has
    not finished in ``timeout`` s. Returns (exit status, stdout, stderr); None as status if it hung."""
    import resource

    def limit():
        _as_foreground()
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    proc = subprocess.Popen([sys.executable, "-m", "imagesr.cli", *map(str, argv)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err


def _special_files(folder):
    os.mkfifo(folder / "fifo.png")
    os.symlink("/dev/zero", folder / "zero.png")


def test_patches_dead_letters_a_fifo_and_a_link_to_dev_zero(tmp_path):
    """The example: a link to /dev/zero named *.png grew a worker to 23 GB, a FIFO named *.png
    hung the job. Under a memory limit both are dead-lettered by their type, the rest goes on."""
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(2):
        write_png(src / f"{i}.png", smooth_image(60, 60, seed=i))
    _special_files(src)
    out = tmp_path / "ds"
    rc, stdout, err = _limited("patches", "--input", src, "--output", out, "--scales", "2", "--eval-fraction", "0",
                               *FAST)
    assert rc == 0, (rc, err)
    with open(out / "manifest.json") as f:
        status = {os.path.basename(i["path"]): i for i in json.load(f)["inputs"]}
    assert status["fifo.png"]["status"] == "failed" and "FIFO" in status["fifo.png"]["reason"]
    assert status["zero.png"]["status"] == "failed" and "character device" in status["zero.png"]["reason"]
    assert status["0.png"]["status"] == status["1.png"]["status"] == "ok"
    dead = [json.loads(ln)["path"] for ln in (out / "dead_letter.jsonl").read_text().splitlines()]
    assert sorted(os.path.basename(p) for p in dead) == ["fifo.png", "zero.png"]


@pytest.mark.parametrize("command", ["upscale", "evaluate"])
def test_a_frame_folder_with_a_special_file_is_one_line(tmp_path, command):
    """Variant: the same files in a frame folder (upscale) and a benchmark folder (evaluate):
    one line naming the file, not a hang or a MemoryError traceback."""
    frames = tmp_path / "frames"
    frames.mkdir()
    write_png(frames / "000.png", smooth_image(H, W))
    os.mkfifo(frames / "001.png")
    os.symlink("/dev/zero", frames / "002.png")
    if command == "upscale":
        rc, _, err = _limited("upscale", frames, "-o", tmp_path / "up", "--model", "bicubic")
    else:
        rc, _, err = _limited("evaluate", "--model", "bicubic", "--dataset", frames, "--scales", "2")
    assert rc == 2, (rc, err)
    _one_line(err, "001.png", "FIFO")
    assert sorted(os.listdir(tmp_path)) == ["frames"]


# --------------------------------------------------------------------------- 5: a pixel budget per source


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """The example: a small PNG (about 100 KB) of 12000x12000 pixels."""
    from PIL import Image

    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("1", (12000, 12000), 1).save(path)
    return path


def test_patches_dead_letters_a_source_over_the_pixel_budget(tmp_path, huge_png):
    src = tmp_path / "imgs"
    src.mkdir()
    os.link(huge_png, src / "huge.png")
    write_png(src / "ok.png", smooth_image(60, 60))
    out = tmp_path / "ds"
    rc, _, err = _limited("patches", "--input", src, "--output", out, "--scales", "2", "--eval-fraction", "0", *FAST)
    assert rc == 0, (rc, err)
    with open(out / "manifest.json") as f:
        status = {os.path.basename(i["path"]): i for i in json.load(f)["inputs"]}
    assert status["huge.png"]["status"] == "failed" and "144.0 megapixels" in status["huge.png"]["reason"]
    assert "--max-megapixels" in status["huge.png"]["reason"] and status["ok.png"]["status"] == "ok"


def test_evaluate_and_upscale_refuse_an_image_over_the_pixel_budget(tmp_path, huge_png):
    rc, _, err = _limited("evaluate", "--model", "bicubic", "--dataset", huge_png.parent, "--scales", "2")
    assert rc == 2, (rc, err)
    _one_line(err, "huge.png", "megapixels")
    rc, _, err = _limited("upscale", huge_png, "-o", tmp_path / "up.png", "--model", "bicubic")
    assert rc == 2, (rc, err)
    _one_line(err, "huge.png", "megapixels")
    assert os.listdir(tmp_path) == []


def test_a_video_over_the_pixel_budget_the_option_sets(tmp_path, capsys, clip):
    """Variant: a video's frame size, from its probe, against a budget given as the option."""
    out = tmp_path / "ds"
    write_png(tmp_path / "a.png", smooth_image(40, 40))
    rc, _, err = _run(capsys, "patches", "--input", clip, "--input", tmp_path / "a.png", "--output", out,
                      "--scales", "2", "--eval-fraction", "0", "--max-megapixels", "0.002", *FAST)
    assert rc == 0, err
    with open(out / "manifest.json") as f:
        status = {os.path.basename(i["path"]): i for i in json.load(f)["inputs"]}
    assert status["clip.mp4"]["status"] == "failed" and "64x48" in status["clip.mp4"]["reason"]
    rc, _, err = _run(capsys, "upscale", clip, "-o", tmp_path / "up.mp4", "--model", "bicubic", "--max-megapixels",
                      "0.002")
    assert rc == 2
    _one_line(err, "clip.mp4", "--max-megapixels")
    assert not (tmp_path / "up.mp4").exists()


# --------------------------------------------------------------------------- 6: model names are the shipped models first


def test_a_folder_named_like_a_shipped_model_does_not_replace_it(tmp_path):
    """The example: a folder ./vdsr in the current directory (here an x2 sub-pixel model) took
    the place of the shipped vdsr. A bare name is the shipped model, with one line saying the
    folder was not used; ./vdsr is that folder."""
    import shutil

    shutil.copytree(_shipped("subpixel_x2"), tmp_path / "vdsr")
    bench = tmp_path / "bench"
    bench.mkdir()
    write_png(bench / "a.png", smooth_image(48, 48))
    def evaluate(model):
        proc = subprocess.run([sys.executable, "-m", "imagesr.cli", "evaluate", "--model", model, "--dataset", "bench",
                               "--scales", "2", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["kind"], [ln for ln in proc.stderr.splitlines() if "vdsr" in ln]

    kind, notes = evaluate("vdsr")
    assert kind == "vdsr" and len(notes) == 1 and "shipped model vdsr" in notes[0] and "./vdsr" in notes[0], notes
    assert evaluate("./vdsr") == ("subpixel", [])


def test_the_default_model_is_the_shipped_one_whatever_the_current_folder_holds(tmp_path, capsys, monkeypatch):
    """Variant: no --model at all, and a folder named like the default model (subpixel_x1.5)
    holding another model in the current directory: the shipped default is used."""
    import shutil

    shutil.copytree(_shipped("subpixel_x2"), tmp_path / "subpixel_x1.5")
    write_png(tmp_path / "a.png", smooth_image(H, W))
    monkeypatch.chdir(tmp_path)
    rc, stdout, err = _run(capsys, "upscale", "a.png", "-o", "b.png")
    assert rc == 0, err
    assert "502,619 parameters" in stdout and "x2 model" not in err, (stdout, err)


# --------------------------------------------------------------------------- 8: workers capped at what helps


@pytest.mark.parametrize("ask", [["--workers", "16"], ["--direct_num_workers=1000"]])
def test_workers_beyond_the_sources_and_cores_are_capped(tmp_path, ask):
    """The example (16 workers for 3 images) and a variant through Beam's own option (1000
    workers hung and ignored SIGTERM): one line says how many are used, and the run uses them."""
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        write_png(src / f"{i}.png", smooth_image(60, 60, seed=i))
    out = tmp_path / "ds"
    proc = _cli("patches", "--input", src, "--output", out, "--scales", "2", "--eval-fraction", "0",
                "--patch-size", "24", "--stride", "24", "--no-progress", *ask)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    used = min(3, os.cpu_count() or 1)
    asked = ask[-1] if len(ask) == 2 else ask[0].split("=")[1]
    notes = [ln for ln in err.splitlines() if "worker processes asked for" in ln]
    assert len(notes) == 1 and f"{asked} worker processes asked for, {used} used" in notes[0], err
    with open(out / "manifest.json") as f:
        assert json.load(f)["options"]["workers"] == used


# --------------------------------------------------------------------------- 15: outputs named by a link to a folder


def test_a_link_to_an_empty_folder_as_a_frame_folder_output(tmp_path, capsys, clip):
    """The example ran to the end, then crashed at os.rmdir and threw the frames away: the
    frames go into the folder the link names, and the link stays."""
    target = tmp_path / "frames"
    target.mkdir()
    link = tmp_path / "link"
    os.symlink(target, link)
    rc, stdout, err = _run(capsys, "upscale", clip, "-o", link, "--model", "bicubic")
    assert rc == 0, err
    assert os.path.islink(link) and os.path.realpath(link) == str(target)
    assert len(os.listdir(target)) == 12 and _leftovers(tmp_path) == []


def test_a_link_to_a_model_folder_as_train_out(tmp_path, capsys, patch_data):
    """Variant: train --out a link to a model folder, --overwrite: the folder it names is
    replaced, the link kept (not swapped for a folder)."""
    target = tmp_path / "models" / "current"
    target.parent.mkdir()
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--out", target)
    assert rc == 0, err
    before = _digest(target / "model.keras")
    link = tmp_path / "model"
    os.symlink(target, link)
    rc, _, err = _run(capsys, "train", "--examples", patch_data, *TRAIN_FAST, "--seed", "3", "--out", link,
                      "--overwrite")
    assert rc == 0, err
    assert os.path.islink(link) and _digest(target / "model.keras") != before
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "models") == []


# --------------------------------------------------------------------------- 16: names of outputs and inputs


@pytest.mark.parametrize("name", ["a" * 240 + ".mp4", "b" * 251 + ".png", "c" * 255])
def test_a_long_legal_output_name_is_written(tmp_path, capsys, clip, name):
    """The example (a 244-byte name refused because of the temporary suffix) and variants: an
    image, and a folder whose name is the longest legal one (its temporary name and its lock's
    are cut, never the output's). A name longer than the file system takes is one line, first."""
    src = clip if not name.endswith(".png") else write_png(tmp_path.parent / f"{tmp_path.name}-a.png", smooth_image(H, W))
    out = tmp_path / "out"
    out.mkdir()
    rc, _, err = _run(capsys, "upscale", src, "-o", out / name, "--model", "bicubic")
    assert rc == 0, err
    assert os.listdir(out) == [name] and _leftovers(out) == []
    rc, _, err = _run(capsys, "upscale", src, "-o", out / ("d" * 256), "--model", "bicubic")
    assert rc == 2
    _one_line(err, "longer than its file system takes")
    assert os.listdir(out) == [name]


def test_relative_names_that_ffmpeg_would_misread(tmp_path, clip):
    """The example (an input named -clip.mp4 reached ffmpeg as an option) and a variant: a name
    with a colon (ffmpeg read clip:1.mp4 as the protocol 'clip'), as input and as output."""
    os.link(clip, tmp_path / "-clip.mp4")
    os.link(clip, tmp_path / "clip:1.mp4")
    for src, out in (("-clip.mp4", "-up.mp4"), ("clip:1.mp4", "up:1.mp4")):
        proc = subprocess.run([sys.executable, "-m", "imagesr.cli", "upscale", "--model", "bicubic", f"--output={out}",
                               "--", src], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert probe_video(str(tmp_path / out)).frame_count == 12
    assert sorted(os.listdir(tmp_path)) == ["-clip.mp4", "-up.mp4", "clip:1.mp4", "up:1.mp4"]


# --------------------------------------------------------------------------- 13: a full disk is one line


def _on_a_small_disk(tmp_path, kib, *argv):
    """`imagesr ARGV` with ``tmp_path/disk`` a file system of ``kib`` KiB of its own (a tmpfs in a
    mount namespace: a real ENOSPC from the kernel). Skipped where namespaces are not allowed."""
    import shlex
    import shutil

    disk = tmp_path / "disk"
    disk.mkdir()
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "-rm", "true"], capture_output=True) if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("no mount namespaces here (unshare -rm), so no small file system of the test's own")
    script = (f"mount -t tmpfs -o size={kib}k tmpfs {shlex.quote(str(disk))} && exec "
              + " ".join(shlex.quote(str(a)) for a in [sys.executable, "-m", "imagesr.cli", *argv]))
    proc = subprocess.run([unshare, "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def test_a_frame_folder_output_on_a_full_disk(tmp_path, clip):
    rc, _, err = _on_a_small_disk(tmp_path, 64, "upscale", clip, "-o", tmp_path / "disk" / "frames", "--model",
                                  "bicubic")
    assert rc == 2, err
    _one_line(err, "frames", "no space left on device")


def test_patches_on_a_full_disk(tmp_path):
    """Variant: the patch job's records fill the disk in a Beam worker."""
    src = tmp_path / "imgs"
    src.mkdir()
    for i in range(3):
        write_png(src / f"{i}.png", smooth_image(240, 320, seed=i))
    rc, _, err = _on_a_small_disk(tmp_path, 256, "patches", "--input", src, "--output", tmp_path / "disk" / "ds",
                                  "--scales", "2", "3", "4", "--patch-size", "24", "--stride", "12", "--residual",
                                  "--workers", "1", "--no-progress", "--eval-fraction", "0")
    assert rc == 2, err
    _one_line(err, "ds", "no space left on device")


# --------------------------------------------------------------------------- 17: empty splits


def _named_for_split(folder, split, eval_fraction, n=1, start=0):
    """``n`` PNG names whose source lands in ``split`` at ``eval_fraction`` (the split is a hash)."""
    from imagesr.core.sources import _key_hash

    names, i = [], start
    while len(names) < n:
        name = f"img{i}.png"
        if (_key_hash(f"{os.path.basename(folder)}/{name}") < eval_fraction) == (split == "eval"):
            names.append(name)
        i += 1
    return names


def test_patches_refuses_an_empty_train_split(tmp_path, capsys):
    """The example: one source and --eval-fraction 0.9 put everything in eval; exit 0 with an
    empty train split. Variant: the train split's only source fails (too small)."""
    src = tmp_path / "imgs"
    src.mkdir()
    (name,) = _named_for_split(src, "eval", 0.9)
    write_png(src / name, smooth_image(60, 60))
    rc, _, err = _run(capsys, "patches", "--input", src, "--output", tmp_path / "ds", "--scales", "2",
                      "--eval-fraction", "0.9", *FAST)
    assert rc == 2
    _one_line(err, "train split got no pairs", "--eval-fraction")
    assert not (tmp_path / "ds").exists()
    src2 = tmp_path / "imgs2"
    src2.mkdir()
    (small,) = _named_for_split(src2, "train", 0.5)
    (good,) = _named_for_split(src2, "eval", 0.5)
    write_png(src2 / small, smooth_image(12, 12))
    write_png(src2 / good, smooth_image(60, 60))
    rc, _, err = _run(capsys, "patches", "--input", src2, "--output", tmp_path / "ds", "--scales", "2",
                      "--eval-fraction", "0.5", *FAST)
    assert rc == 2
    _one_line(err, "train split got no pairs", small)
    assert not (tmp_path / "ds").exists()


def test_train_without_eval_records_points_at_no_eval(tmp_path, capsys, patch_data):
    """A dataset made with --eval-fraction 0 (its Split-eval empty) and one without Split-eval."""
    import shutil

    for variant in ("empty", "missing"):
        data = tmp_path / variant
        shutil.copytree(patch_data, data)
        shutil.rmtree(data / "Split-eval")
        if variant == "empty":
            (data / "Split-eval").mkdir()
            with gzip.open(data / "Split-eval" / "data_tfrecord-00000-of-00001.gz", "wb"):
                pass
        rc, _, err = _run(capsys, "train", "--examples", data, *TRAIN_FAST, "--out", tmp_path / "run")
        assert rc == 2, err
        _one_line(err, "--no-eval")
        assert not (tmp_path / "run").exists()
    rc, _, err = _run(capsys, "train", "--examples", data, *TRAIN_FAST, "--out", tmp_path / "run", "--no-eval")
    assert rc == 0, err


# --------------------------------------------------------------------------- 18: small things


def test_version_and_commands_without_their_action(capsys):
    from importlib.metadata import version

    rc, stdout, _ = _run(capsys, "--version")
    assert rc == 0 and stdout.strip() == f"imagesr {version('imagesr')}"
    for command, action in (("bench", "bicubic"), ("pipeline", "compile-vertex"), ("runs", "show"), ("records", "count")):
        rc, stdout, _ = _run(capsys, command)
        assert rc == 2 and stdout.startswith(f"usage: imagesr {command} ") and action in stdout, (command, stdout)


@pytest.mark.parametrize("ext", [".jpg", ".webp"])
def test_lossy_image_outputs_take_a_quality(tmp_path, capsys, ext):
    src = write_png(tmp_path / "a.png", smooth_image(96, 128))
    sizes = {}
    for q in ("10", "95"):
        rc, _, err = _run(capsys, "upscale", src, "-o", tmp_path / f"q{q}{ext}", "--model", "bicubic", "--quality", q)
        assert rc == 0, err
        sizes[q] = os.path.getsize(tmp_path / f"q{q}{ext}")
    assert sizes["10"] < sizes["95"] / 2
    rc, _, err = _run(capsys, "upscale", src, "-o", tmp_path / "d.png", "--model", "bicubic", "--quality", "50")
    assert rc == 2
    _one_line(err, "--quality", "d.png")
    rc, _, err = _run(capsys, "upscale", src, "-o", tmp_path / f"e{ext}", "--model", "bicubic", "--quality", "0")
    assert rc == 2
    _one_line(err, "--quality")


def _keras_archive(path, edit=None, extra=None):
    """A tiny model's .keras file, its config edited by ``edit`` and ``extra`` files added."""
    import zipfile

    from imagesr.training.models import build_model

    good = str(path) + ".good.keras"
    build_model("subpixel", scale=2, width=8, blocks=1).save(good)
    with zipfile.ZipFile(good) as z:
        members = {n: z.read(n) for n in z.namelist()}
    os.remove(good)
    if edit:
        cfg = json.loads(members["config.json"])
        edit(cfg)
        members["config.json"] = json.dumps(cfg).encode()
    members.update(extra or {})
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return str(path)


def test_keras_load_errors_in_whole_sentences_and_no_extracted_copy(tmp_path):
    """A model naming a layer class that does not exist: Keras's message was cut at 200
    characters mid-word. Variant: an archive with assets whose last member is corrupt: Keras
    extracted it into the temporary folder and left it there."""
    def unknown_layer(cfg):
        cfg["config"]["layers"][1].update(class_name="NoSuchLayer", module="nowhere.at.all")

    bad = _keras_archive(tmp_path / "bad.keras", edit=unknown_layer)
    corrupt = _keras_archive(tmp_path / "corrupt.keras", extra={"assets/notes.txt": b"x" * 5000})
    blob = bytearray(open(corrupt, "rb").read())
    blob[blob.find(b"x" * 100) + 10] = ord("y")
    open(corrupt, "wb").write(bytes(blob))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    src = write_png(tmp_path / "a.png", smooth_image(H, W))
    for model, needle in ((bad, "Could not locate class 'NoSuchLayer'."), (corrupt, "Bad CRC-32")):
        proc = _cli("upscale", src, "-o", tmp_path / "b.png", "--model", model, env=dict(os.environ, TMPDIR=str(tmp)))
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2
        line = _one_line(err, model, needle)
        assert line.endswith(".)") or line.endswith("')"), line  # whole sentences
        assert os.listdir(tmp) == [], os.listdir(tmp)


def test_records_count_of_a_file(tmp_path, capsys):
    a_file = tmp_path / "data.tfrecord.gz"
    a_file.write_bytes(b"x")
    rc, _, err = _run(capsys, "records", "count", a_file)
    assert rc == 2
    _one_line(err, str(a_file), "not a folder")


def test_an_interruption_while_a_temporary_output_is_claimed_leaves_nothing(tmp_path):
    """Found by the full suite (test_upscale_stopped_by_a_signal_leaves_nothing, under load):
    Ctrl-C between a video writer creating its temporary file and starting its encoder left the
    file, which had no owner yet to remove it. Here a command is interrupted right after it
    claimed a temporary file and folder: the command line removes both."""
    script = ("import sys, imagesr.cli as c, imagesr.core.outputs as o\n"
              "def interrupted(args):\n"
              "    o.claim_partial(sys.argv[1])\n"
              "    o.claim_partial(sys.argv[1] + '-frames', folder=True)\n"
              "    raise KeyboardInterrupt\n"
              "c._cmd_models = interrupted\n"
              "sys.exit(c.main(['models']))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "up.mp4")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 130 and "interrupted" in proc.stderr, proc.stderr
    assert os.listdir(tmp_path) == []
