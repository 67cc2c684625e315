"""The bad-input corpus, media part (issue 24 items 9-12, each with the reported case and a
variant): audio/video start offsets kept, numbered frames in their numeric order, animated
GIF/WebP read with their timing, and no stream or colour meaning dropped without a line.
Plus the encoder options' one-line errors. Real ffmpeg, generated media."""

import os
import subprocess

import numpy as np
import pytest
from conftest import write_png
from PIL import Image
from test_bad_input import _one_line
from test_live import FFMPEG, av_offset, make_source, probe, streams

from imagesr import cli
from imagesr.core.media import iter_video_frames, list_frames


def _run(capsys, *argv):
    try:
        rc = cli.main(["upscale", *map(str, argv)])
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


# --------------------------------------------------------------------------- 9: audio/video offset


@pytest.mark.parametrize("container", [".mp4", ".ts"])
@pytest.mark.parametrize("delay", [0.5, -0.5])  # video 0.5 s after the audio, and the audio 0.5 s after the video
def test_audio_video_offset_is_kept(tmp_path, capsys, container, delay):
    plain = make_source(tmp_path / "plain.mkv", seconds=2)
    src = str(tmp_path / f"offset{container}")
    late, early = ("0:v", "1:a") if delay > 0 else ("1:v", "0:a")
    subprocess.run(FFMPEG + ["-itsoffset", str(abs(delay)), "-i", plain, "-i", plain, "-map", late, "-map", early,
                             "-c", "copy", src], check=True)
    before = av_offset(probe(src))
    assert before == pytest.approx(delay, abs=0.05)  # the case as reported
    out = tmp_path / f"up{container}"
    rc, _, err = _run(capsys, src, "-o", out, "--model", "bicubic")
    assert rc == 0, err
    assert av_offset(probe(out)) == pytest.approx(before, abs=1e-3)
    # variant: into Matroska, another container's clock
    rc, _, err = _run(capsys, src, "-o", tmp_path / "up.mkv", "--model", "bicubic")
    assert rc == 0, err
    assert av_offset(probe(tmp_path / "up.mkv")) == pytest.approx(delay, abs=0.03)


# --------------------------------------------------------------------------- 10: frame order


def _level_frames(folder, names):
    folder.mkdir()
    for i, name in enumerate(names):
        write_png(folder / name, np.full((16, 16, 3), 20 * i + 10, np.uint8))


def test_numbered_frames_in_numeric_order(tmp_path, capsys):
    names = [f"{i}.png" for i in range(1, 13)]  # no zero padding: a name sort gives 1, 10, 11, 12, 2, ...
    _level_frames(tmp_path / "seq", names)
    assert [os.path.basename(p) for p in list_frames(str(tmp_path / "seq"))] == names
    rc, _, err = _run(capsys, tmp_path / "seq", "-o", tmp_path / "seq.mkv", "--model", "bicubic", "--fps", "5")
    assert rc == 0 and "gaps" not in err
    levels = [int(f[8, 8, 1]) for f in iter_video_frames(str(tmp_path / "seq.mkv"))]
    assert len(levels) == 12 and all(abs(lv - (20 * i + 10)) <= 3 for i, lv in enumerate(levels)), levels


def test_numbering_gaps_are_said(tmp_path, capsys):
    _level_frames(tmp_path / "gappy", ["frame_1.png", "frame_2.png", "frame_4.png", "frame_9.png"])
    rc, _, err = _run(capsys, tmp_path / "gappy", "-o", tmp_path / "out", "--model", "bicubic")
    assert rc == 0
    note = next(ln for ln in err.splitlines() if "gaps" in ln)
    assert "5 missing (3, 5, 6, 7, 8)" in note and "gappy" in note
    assert sorted(os.listdir(tmp_path / "out")) == ["frame_1.png", "frame_2.png", "frame_4.png", "frame_9.png"]


# --------------------------------------------------------------------------- 11: animations


def _animation(path, durations, fmt):
    frames = [Image.new("RGB", (24, 16), (40 + 60 * i, 100, 200 - 50 * i)) for i in range(len(durations))]
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=durations, loop=0,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    return str(path)


@pytest.mark.parametrize("fmt,ext", [("GIF", ".gif"), ("WEBP", ".webp")])
def test_animations_keep_every_frame_and_its_timing(tmp_path, capsys, fmt, ext):
    src = _animation(tmp_path / f"anim{ext}", [100, 300, 200], fmt)
    out = tmp_path / "anim.mkv"
    rc, stdout, err = _run(capsys, src, "-o", out, "--model", "bicubic")
    assert rc == 0, err
    frames = list(iter_video_frames(str(out)))
    v = streams(probe(out), "video")[0]
    assert v["r_frame_rate"] == "10/1" and len(frames) == 6  # 600 ms at 10 fps: frame 0 once, 1 three times, 2 twice
    red = [int(f[12, 18, 0]) for f in frames]
    expected = [40, 100, 100, 100, 160, 160]
    assert all(abs(a - b) <= 6 for a, b in zip(red, expected)), red
    # variant: into a folder, one image per frame of the animation
    rc, _, err = _run(capsys, src, "-o", tmp_path / "frames", "--model", "bicubic")
    assert rc == 0 and len(os.listdir(tmp_path / "frames")) == 3
    # and into one image: refused in one line, not its first frame silently
    rc, _, err = _run(capsys, src, "-o", tmp_path / "one.png", "--model", "bicubic")
    assert rc == 2
    _one_line(err, "an image holds one frame")
    assert not (tmp_path / "one.png").exists()


# --------------------------------------------------------------------------- 12: nothing dropped silently


def test_streams_a_container_cannot_take_are_named(tmp_path, capsys):
    base = make_source(tmp_path / "base.mkv", seconds=1)
    (tmp_path / "s.srt").write_text("1\n00:00:00,100 --> 00:00:00,900\nhi\n")
    src = tmp_path / "subs.mkv"
    subprocess.run(FFMPEG + ["-i", base, "-i", str(tmp_path / "s.srt"), "-map", "0", "-map", "1", "-c", "copy",
                             "-c:s", "srt", str(src)], check=True)
    rc, _, err = _run(capsys, src, "-o", tmp_path / "up.ts", "--model", "bicubic")
    assert rc == 0
    assert "not carried: subtitle stream 2 (subrip): mpegts cannot hold subrip subtitles" in err
    # variant: a second video stream (not cover art) is not upscaled, and says so
    two = tmp_path / "two.mkv"
    subprocess.run(FFMPEG + ["-i", base, "-i", base, "-map", "0:v", "-map", "1:v", "-map", "0:a", "-c", "copy",
                             str(two)], check=True)
    rc, stdout, err = _run(capsys, two, "-o", tmp_path / "two_up.mkv", "--model", "bicubic")
    assert rc == 0 and "audio copied" in stdout
    assert "not carried: video stream 1 (h264): only the first video stream is upscaled" in err


def test_interlaced_video_is_deinterlaced_and_said(tmp_path, capsys):
    src = tmp_path / "interlaced.mkv"
    subprocess.run(FFMPEG + ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-t", "1", "-vf", "setfield=tff",
                             "-c:v", "libx264", "-flags", "+ildct+ilme", "-top", "1", "-pix_fmt", "yuv420p", str(src)],
                   check=True)
    assert streams(probe(src), "video")[0]["field_order"] == "tt"
    rc, _, err = _run(capsys, src, "-o", tmp_path / "up.mkv", "--model", "bicubic")
    assert rc == 0 and "interlaced input (tt): deinterlaced" in err
    assert streams(probe(tmp_path / "up.mkv"), "video")[0]["field_order"] == "progressive"
    assert len(list(iter_video_frames(str(tmp_path / "up.mkv")))) == 25  # one frame per frame


# --------------------------------------------------------------------------- encoder options


@pytest.mark.parametrize("args,needle", [
    (["--codec", "h265"], "--codec 'h265'"),
    (["--crf", "99"], "--crf"),
    (["--pix-fmt", "rgb24"], "--pix-fmt 'rgb24'"),
    (["--format", "nosuchmuxer"], "--format 'nosuchmuxer'"),
    (["--codec", "libx265", "--preset", "fastest"], "--preset 'fastest'"),
    (["--realtime", "-o", "frames_out"], "--realtime"),
])
def test_encoder_options_that_cannot_work_are_one_line(tmp_path, capsys, args, needle):
    src = make_source(tmp_path / "src.mp4", seconds=1)
    out = ["-o", tmp_path / "up.mp4"] if "-o" not in args else []
    rc, _, err = _run(capsys, src, *out, "--model", "/no/such/model", *args)
    assert rc == 2
    _one_line(err, needle)  # checked before the (missing) model is looked at
    assert sorted(os.listdir(tmp_path)) == ["src.mp4"]
