"""`imagesr upscale` live: streams served on 127.0.0.1 by the real ffmpeg (UDP in, TCP and a file
out), standard input to standard output through pipes, real-time mode against a source faster
than the model, checked on the receiving side (frame count, frame times, audio sync); the
resume of a job killed with SIGKILL; batch mode. Ports are the OS's free ones; every process a
test starts is ended by the fixture, whatever the test's outcome."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

from imagesr.upscale.inputs import REPEAT
from imagesr.upscale.pipeline import FrameQueue

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
IMAGESR = [sys.executable, "-m", "imagesr.cli", "upscale"]
TIMEOUT = 300  # generous: a loaded machine is slow, a hang is still caught


@pytest.fixture
def procs():
    """Processes a test starts: all ended (killed if still running) when it ends."""
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def _start(procs, cmd, **kw):
    p = subprocess.Popen(cmd, cwd=ROOT, **kw)
    procs.append(p)
    return p


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_bound(port: int, table: str) -> bool:
    """Whether a socket listens on 127.0.0.1:port (from /proc/net: no probing that could race)."""
    want = f":{port:04X}"
    with open(f"/proc/net/{table}") as f:
        return any(line.split()[1].endswith(want) for line in f.readlines()[1:])


def _wait_bound(port: int, table: str, proc) -> None:
    deadline = time.time() + TIMEOUT
    while not _port_is_bound(port, table):
        assert proc.poll() is None, "the receiving process ended before it listened"
        assert time.time() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)


def probe(path):
    """{"video": {...}, "audio": [...], ...} per stream type, with start, duration, frame count."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_chapters", "-show_format",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def streams(meta, kind):
    return [s for s in meta["streams"] if s["codec_type"] == kind]


def video_times(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of",
                          "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    return [float(t.split(",")[0]) for t in out.split() if t.split(",")[0]]


def make_source(path, seconds=3, size="64x48", rate=10, gop=10, extra=()):
    """testsrc2 video plus a sine track, H.264 + AAC."""
    subprocess.run(FFMPEG + ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-f", "lavfi", "-i",
                             f"sine=frequency=440:duration={seconds}", "-t", str(seconds), "-c:v", "libx264",
                             "-g", str(gop), "-pix_fmt", "yuv420p", "-c:a", "aac", *extra, str(path)], check=True)
    return str(path)


def av_offset(meta):
    return float(streams(meta, "video")[0]["start_time"]) - float(streams(meta, "audio")[0]["start_time"])


# --------------------------------------------------------------------------- the queue between reader and model


def test_file_mode_never_drops_and_real_time_drops_the_oldest():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(6)]
    q = FrameQueue(limit=2, drop=True, max_wait=100)
    for f in frames:
        q.put(f)  # never waits: the model is "slower" than the source
    q.finish()
    items = q.take(10, realtime=True)
    assert q.dropped == 4 and [it.dropped for it in items] == [True] * 4 + [False] * 2
    assert [int(it.frame[0, 0, 0]) for it in items if it.frame is not REPEAT] == [4, 5]  # the newest kept

    q = FrameQueue(limit=2, drop=False)
    import threading

    t = threading.Thread(target=lambda: ([q.put(f) for f in frames], q.finish()))
    t.start()
    got = []
    while True:
        items = q.take(2, realtime=False)
        if not items:
            break
        got += [int(it.frame[0, 0, 0]) for it in items]
        time.sleep(0.01)  # a slow model: the reader waits instead of dropping
    t.join()
    assert got == list(range(6)) and q.dropped == 0

    q = FrameQueue(limit=100, drop=True, max_wait=0.0)  # frames that waited too long are dropped, the newest kept
    for f in frames[:3]:
        q.put(f)
    items = q.take(4, realtime=True)
    assert q.dropped == 2 and [it.frame is REPEAT for it in items] == [True, True, False]


# --------------------------------------------------------------------------- a stream served by ffmpeg


@pytest.mark.slow
def test_udp_stream_upscaled_live_to_a_tcp_stream_and_to_a_file(tmp_path, procs):
    src = make_source(tmp_path / "src.ts", extra=["-f", "mpegts"])
    src_meta = probe(src)
    for target in ("tcp", "file"):
        udp = free_port(socket.SOCK_DGRAM)
        received = tmp_path / f"received_{target}.ts"
        if target == "tcp":
            tcp = free_port()
            receiver = _start(procs, FFMPEG + ["-i", f"tcp://127.0.0.1:{tcp}?listen=1", "-c", "copy", str(received)])
            _wait_bound(tcp, "tcp", receiver)
            out = f"tcp://127.0.0.1:{tcp}"
        else:
            out = str(received)
        up = _start(procs, IMAGESR + [f"udp://127.0.0.1:{udp}?timeout=3000000", "-o", out, "--model", "bicubic"],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_bound(udp, "udp", up)
        sender = _start(procs, FFMPEG + ["-re", "-i", src, "-c", "copy", "-f", "mpegts",
                                         f"udp://127.0.0.1:{udp}?pkt_size=1316"])
        assert sender.wait(timeout=TIMEOUT) == 0
        stdout, err = up.communicate(timeout=TIMEOUT)
        assert up.returncode == 0, err
        print(stdout.strip())
        assert "upscaled 30 frames" in stdout and "real time:" in stdout and "latency p50" in stdout
        if target == "tcp":
            assert receiver.wait(timeout=TIMEOUT) == 0
        meta = probe(received)
        v = streams(meta, "video")[0]
        assert (int(v["width"]), int(v["height"]), int(v["nb_read_frames"])) == (96, 72, 30)
        times = video_times(received)
        assert np.allclose(np.diff(sorted(times)), 0.1, atol=1e-3)  # 10 fps, every frame in its place
        assert av_offset(meta) == pytest.approx(av_offset(src_meta), abs=2e-3)  # audio in sync
        a, a_src = streams(meta, "audio")[0], streams(src_meta, "audio")[0]
        assert int(a["nb_read_frames"]) == int(a_src["nb_read_frames"])


@pytest.mark.slow
def test_stdin_to_stdout_through_pipes(tmp_path, procs):
    src = make_source(tmp_path / "src.mkv", seconds=2)  # Matroska on both sides: the same view of AAC's priming
    out = tmp_path / "received.mkv"
    feeder = _start(procs, FFMPEG + ["-i", src, "-c", "copy", "-f", "nut", "-"], stdout=subprocess.PIPE)
    up = _start(procs, IMAGESR + ["-", "-o", "-", "--format", "nut", "--model", "bicubic"], stdin=feeder.stdout,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    feeder.stdout.close()
    receiver = _start(procs, FFMPEG + ["-i", "-", "-c", "copy", str(out)], stdin=up.stdout)
    up.stdout.close()
    assert receiver.wait(timeout=TIMEOUT) == 0
    err = up.stderr.read().decode()
    assert up.wait(timeout=TIMEOUT) == 0, err
    assert "upscaled 20 frames" in err and "-> -" in err  # the summary goes to stderr: stdout is the video
    meta, src_meta = probe(out), probe(src)
    v = streams(meta, "video")[0]
    assert (int(v["width"]), int(v["height"]), int(v["nb_read_frames"])) == (96, 72, 20)
    assert np.allclose(np.diff(sorted(video_times(out))), 0.1, atol=1e-3)
    assert float(meta["format"]["duration"]) == pytest.approx(float(src_meta["format"]["duration"]), abs=0.05)
    assert av_offset(meta) == pytest.approx(av_offset(src_meta), abs=2e-3)


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """VDSR as published (20 layers of 64 channels): far slower on a CPU than a 25 fps source."""
    from imagesr.training.models import build_model
    from imagesr.training.serving import export_model

    out = str(tmp_path_factory.mktemp("vdsr") / "vdsr_full")
    export_model(build_model("vdsr"), out)
    return out


@pytest.mark.slow
def test_realtime_drops_and_reports_frames_against_a_faster_source(tmp_path, procs, slow_model):
    # 256x192 -> 384x288: about 160 GFLOP a frame for VDSR, several frames a second short of 25
    # even on a large CPU
    src = make_source(tmp_path / "src.ts", seconds=2, size="256x192", rate=25, gop=25, extra=["-f", "mpegts"])
    tcp = free_port()
    server = _start(procs, FFMPEG + ["-re", "-i", src, "-c", "copy", "-f", "mpegts", f"tcp://127.0.0.1:{tcp}?listen=1"])
    _wait_bound(tcp, "tcp", server)
    out = tmp_path / "live.mkv"
    up = _start(procs, IMAGESR + [f"tcp://127.0.0.1:{tcp}", "-o", out, "--model", slow_model, "--batch", "2"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, err = up.communicate(timeout=TIMEOUT)
    assert up.returncode == 0, err
    print(stdout.strip())
    dropped = int(stdout.split("real time: ")[1].split(" dropped")[0])
    assert dropped > 0 and "latency p50" in stdout and "max" in stdout
    meta = probe(out)
    # every input frame has its slot (dropped ones show the previous frame): timing and sync kept
    assert int(streams(meta, "video")[0]["nb_read_frames"]) == 50
    assert av_offset(meta) == pytest.approx(av_offset(probe(src)), abs=2e-3)


# --------------------------------------------------------------------------- resume and batch


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, procs):
    src = make_source(tmp_path / "src.mp4", seconds=6, size="320x240", rate=25, gop=12)
    offset = tmp_path / "offset.mp4"  # the video 0.3 s after the audio: resume keeps that too
    subprocess.run(FFMPEG + ["-itsoffset", "0.3", "-i", src, "-i", src, "-map", "0:v", "-map", "1:a", "-c", "copy",
                             str(offset)], check=True)
    plain, resumed = tmp_path / "plain.mp4", tmp_path / "resumed.mp4"
    args = ["--model", "bicubic", "--batch", "1"]
    subprocess.run(IMAGESR + [str(offset), "-o", str(plain)] + args, cwd=ROOT, check=True, capture_output=True)
    state = tmp_path / ".resumed.mp4.imagesr-resume"
    job = _start(procs, IMAGESR + [str(offset), "-o", str(resumed), "--resume", "--segment-seconds", "1"] + args,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + TIMEOUT
    while not (state / "seg-00001.mp4").exists():
        assert job.poll() is None and time.time() < deadline, "the job ended before two segments were written"
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=60)
    assert not resumed.exists() and (state / "seg-00000.mp4").exists()
    done = subprocess.run(IMAGESR + [str(offset), "-o", str(resumed), "--resume", "--segment-seconds", "1"] + args,
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "resumed after" in done.stdout and not state.exists()
    a, b = probe(plain), probe(resumed)
    va, vb = streams(a, "video")[0], streams(b, "video")[0]
    assert int(va["nb_read_frames"]) == int(vb["nb_read_frames"]) == 150
    assert video_times(plain) == pytest.approx(video_times(resumed), abs=1e-4)
    assert float(va["start_time"]) == pytest.approx(0.3, abs=1e-3) == float(vb["start_time"])
    assert float(a["format"]["duration"]) == pytest.approx(float(b["format"]["duration"]), abs=1e-3)
    assert av_offset(a) == pytest.approx(av_offset(b), abs=1e-4)


def test_resume_refuses_the_state_of_another_job(tmp_path):
    from imagesr import cli

    src = make_source(tmp_path / "src.mp4", seconds=1)
    state = tmp_path / ".up.mp4.imagesr-resume"
    state.mkdir()
    (state / "job.json").write_text(json.dumps({"version": 1, "input": "/elsewhere.mp4", "starts": [0]}))
    rc = cli.main(["upscale", src, "-o", str(tmp_path / "up.mp4"), "--model", "bicubic", "--resume"])
    assert rc == 2 and not (tmp_path / "up.mp4").exists() and (state / "job.json").exists()


def test_batch_a_folder_of_videos(tmp_path, capsys):
    from imagesr import cli

    videos = tmp_path / "videos"
    videos.mkdir()
    make_source(videos / "a.mp4", seconds=1)
    make_source(videos / "b.webm", seconds=1, extra=["-c:v", "libvpx-vp9", "-c:a", "libopus"])
    (videos / "c.mp4").write_bytes(b"not a video at all")
    out = tmp_path / "out"
    rc = cli.main(["upscale", str(videos), "-o", str(out), "--model", "bicubic"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 1 and len(lines) == 4, lines  # one line per file, then the count
    assert "a.mp4: upscaled 10 frames" in lines[0] and "b.webm: upscaled 10 frames" in lines[1]
    assert "c.mp4: failed:" in lines[2] and "not a readable video" in lines[2]
    assert lines[3].startswith("batch: 2 upscaled, 1 failed, 0 skipped")
    assert sorted(os.listdir(out)) == ["a.mp4", "b.mkv"]  # .webm cannot hold H.264: .mkv
    assert int(streams(probe(out / "b.mkv"), "video")[0]["width"]) == 96
    rc = cli.main(["upscale", str(videos), "-o", str(out), "--model", "bicubic"])
    assert rc == 1 and "batch: 0 upscaled, 1 failed, 2 skipped" in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_ends_a_live_stream_and_keeps_what_was_upscaled(tmp_path, procs):
    from test_bad_input import _as_foreground

    src = make_source(tmp_path / "src.ts", seconds=20, rate=10, extra=["-f", "mpegts"])
    tcp = free_port()
    server = _start(procs, FFMPEG + ["-re", "-i", src, "-c", "copy", "-f", "mpegts", f"tcp://127.0.0.1:{tcp}?listen=1"])
    _wait_bound(tcp, "tcp", server)
    out = tmp_path / "out"
    out.mkdir()
    up = _start(procs, IMAGESR + [f"tcp://127.0.0.1:{tcp}", "-o", out / "rec.mkv", "--model", "bicubic"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_foreground)
    import threading

    lines = []
    reader = threading.Thread(target=lambda: lines.extend(up.stderr), daemon=True)
    reader.start()
    deadline = time.time() + TIMEOUT
    while not any(ln.startswith("[upscale] ") and "frames/s" in ln and not ln.startswith("[upscale] 0 ")
                  for ln in list(lines)):  # the progress line: frames are being written
        assert up.poll() is None and time.time() < deadline, lines
        time.sleep(0.05)
    up.send_signal(signal.SIGINT)
    stdout = up.stdout.read()
    up.wait(timeout=TIMEOUT)
    reader.join(timeout=60)
    err = "".join(lines)
    assert up.returncode == 0, err
    assert "stopped by a signal, the stream so far kept" in stdout
    assert os.listdir(out) == ["rec.mkv"]
    frames = int(streams(probe(out / "rec.mkv"), "video")[0]["nb_read_frames"])
    assert 0 < frames < 200 and f"upscaled {frames} frames" in stdout
