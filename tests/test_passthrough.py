"""Passthrough and encoding of `imagesr upscale`: every stream of the input carried (audio
tracks, subtitles, chapters, metadata) with its duration, or named in one line; 10-bit HDR
(PQ) in gives 10-bit out with the same transfer, primaries and mastering metadata; the
encoder options. Real ffmpeg/ffprobe on small generated files."""

import subprocess

import numpy as np
import pytest
from test_live import FFMPEG, probe, streams

from imagesr import cli
from imagesr.core.media import hdr_metadata

MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"


def _run(capsys, *argv):
    rc = cli.main(["upscale", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def stream_durations(path):
    """Per stream index: last packet end - first packet start (s), from the packets themselves."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time,duration_time",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True).stdout
    spans = {}
    for line in out.split():
        idx, pts, dur = (line.split(",") + ["", ""])[:3]
        if pts in ("", "N/A"):
            continue
        end = float(pts) + (float(dur) if dur not in ("", "N/A") else 0.0)
        lo, hi = spans.get(int(idx), (float(pts), end))
        spans[int(idx)] = (min(lo, float(pts)), max(hi, end))
    return {k: hi - lo for k, (lo, hi) in spans.items()}


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """3 s of video, two audio tracks (3 s and 2.5 s, eng and fra), SubRip subtitles, two
    chapters and a title, in Matroska."""
    d = tmp_path_factory.mktemp("rich")
    (d / "subs.srt").write_text("1\n00:00:00,500 --> 00:00:01,500\nhello\n\n2\n00:00:02,000 --> 00:00:02,800\nworld\n")
    (d / "meta.txt").write_text(";FFMETADATA1\ntitle=upscale test\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\n"
                                "title=one\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=1500\nEND=3000\ntitle=two\n")
    out = d / "rich.mkv"
    subprocess.run(FFMPEG + ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10", "-f", "lavfi", "-i",
                             "sine=frequency=440:duration=3", "-f", "lavfi", "-i", "sine=frequency=880:duration=2.5",
                             "-i", str(d / "subs.srt"), "-i", str(d / "meta.txt"), "-map", "0:v", "-map", "1:a",
                             "-map", "2:a", "-map", "3:s", "-map_metadata", "4", "-map_chapters", "4", "-t", "3",
                             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt",
                             "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra", str(out)],
                   check=True)
    return str(out)


def test_two_audio_tracks_subtitles_and_chapters_keep_their_durations(rich, tmp_path, capsys):
    src = probe(rich)
    src_spans = stream_durations(rich)
    rc, stdout, err = _run(capsys, rich, "-o", tmp_path / "up.mkv", "--model", "bicubic")
    assert rc == 0, err
    assert "2 audio copied, subtitles copied, chapters copied" in stdout
    meta = probe(tmp_path / "up.mkv")
    assert [s["codec_type"] for s in meta["streams"]] == ["video", "audio", "audio", "subtitle"]
    assert [s["tags"]["language"] for s in streams(meta, "audio")] == ["eng", "fra"]
    assert meta["format"]["tags"]["title"] == "upscale test"
    assert [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in meta["chapters"]] == \
        [(c["start_time"], c["end_time"], c["tags"]["title"]) for c in src["chapters"]]
    spans = stream_durations(tmp_path / "up.mkv")
    for i in (1, 2, 3):  # each audio track and the subtitles as long as in the input
        assert spans[i] == pytest.approx(src_spans[i], abs=0.03), (i, spans, src_spans)
    assert spans[1] == pytest.approx(3.0, abs=0.05) and spans[2] == pytest.approx(2.5, abs=0.05)


def test_containers_that_take_less_say_what_they_converted_or_left_out(rich, tmp_path, capsys):
    rc, stdout, err = _run(capsys, rich, "-o", tmp_path / "up.mp4", "--model", "bicubic")
    assert rc == 0, err
    meta = probe(tmp_path / "up.mp4")
    # (an MP4 also holds its chapters as a QuickTime text track, which ffprobe lists as data)
    assert [(s["codec_type"], s["codec_name"]) for s in meta["streams"] if s["codec_type"] != "data"] == \
        [("video", "h264"), ("audio", "aac"), ("audio", "aac"), ("subtitle", "mov_text")]
    assert len(meta["chapters"]) == 2
    assert "subtitle stream 3 (subrip) re-encoded as mov_text" in err
    rc, stdout, err = _run(capsys, rich, "-o", tmp_path / "up.ts", "--model", "bicubic")
    assert rc == 0, err
    meta = probe(tmp_path / "up.ts")
    assert [s["codec_type"] for s in meta["streams"]] == ["video", "audio", "audio"]
    notes = [ln for ln in err.splitlines() if "not carried" in ln]
    assert any("subtitle stream 3 (subrip)" in n and "mpegts cannot hold" in n for n in notes), err
    assert any("chapters" in n and "mpegts has no chapters" in n for n in notes), err


@pytest.fixture(scope="module")
def hdr_clip(tmp_path_factory):
    """10-bit HEVC, PQ, BT.2020, mastering display and content light level: a horizontal ramp that
    climbs 40 ten-bit levels across the frame (smooth: 8 bits would band it into 10 steps)."""
    h, w = 48, 160
    ramp = np.linspace(400, 440, w) / 1023 * 65535
    rgb = np.repeat(np.repeat(ramp[None, :, None], h, 0), 3, 2).astype("<u2")
    out = tmp_path_factory.mktemp("hdr") / "hdr.mkv"
    subprocess.run(FFMPEG + ["-f", "rawvideo", "-pix_fmt", "rgb48le", "-s", f"{w}x{h}", "-r", "10", "-i", "pipe:",
                             "-vf", "scale=out_color_matrix=bt2020:out_range=limited,format=yuv420p10le",
                             "-c:v", "libx265", "-x265-params", f"log-level=error:hdr10=1:master-display={MASTER}:"
                             "max-cll=1000,400", "-crf", "4", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
                             "-colorspace", "bt2020nc", str(out)], input=np.concatenate([rgb] * 5).tobytes(), check=True)
    return str(out)


def _luma_row(path, w):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt",
                          "yuv420p10le", "-"], capture_output=True, check=True).stdout
    y = np.frombuffer(raw, "<u2")
    return y[len(y) // 3 // w * w // 2 // w * w:][:w]  # a row from the middle of the luma plane


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_10bit_hdr_stays_10bit_with_its_transfer_primaries_and_mastering_metadata(hdr_clip, tmp_path, capsys, codec):
    out = tmp_path / f"up_{codec}.mkv"
    rc, stdout, err = _run(capsys, hdr_clip, "-o", out, "--model", "bicubic", "--scale", "2", "--codec", codec)
    assert rc == 0, err
    v = streams(probe(out), "video")[0]
    assert (v["pix_fmt"], v["color_transfer"], v["color_primaries"], v["color_space"]) == \
        ("yuv420p10le", "smpte2084", "bt2020", "bt2020nc")
    assert hdr_metadata(str(out), None) == hdr_metadata(hdr_clip, None)
    assert hdr_metadata(str(out), None).master_display == MASTER
    assert hdr_metadata(str(out), None).content_light == (1000, 400)
    row = _luma_row(out, 320)
    assert len(np.unique(row)) >= 25  # the ramp's 40 levels survive (8 bits would leave about 10)


def test_10bit_input_written_as_8bit_only_when_asked_and_said(hdr_clip, tmp_path, capsys):
    rc, _, err = _run(capsys, hdr_clip, "-o", tmp_path / "up8.mkv", "--model", "bicubic", "--pix-fmt", "yuv420p")
    assert rc == 0 and "10-bit input written as 8-bit (--pix-fmt yuv420p)" in err
    v = streams(probe(tmp_path / "up8.mkv"), "video")[0]
    assert v["pix_fmt"] == "yuv420p" and v["color_transfer"] == "smpte2084"  # the tags still say what it is


def test_encoder_options(tmp_path, capsys):
    from test_live import make_source

    src = make_source(tmp_path / "src.mp4", seconds=1)
    rc, stdout, err = _run(capsys, src, "-o", tmp_path / "up.video", "--model", "bicubic", "--codec", "libx265",
                           "--crf", "30", "--preset", "ultrafast", "--pix-fmt", "yuv420p10le", "--format", "matroska")
    assert rc == 0, err
    meta = probe(tmp_path / "up.video")
    assert meta["format"]["format_name"].startswith("matroska")
    v = streams(meta, "video")[0]
    assert (v["codec_name"], v["pix_fmt"], int(v["nb_read_frames"])) == ("hevc", "yuv420p10le", 10)
    # defaults: what imagesr always wrote (H.264 4:2:0 8-bit, CRF 18, veryfast)
    rc, _, err = _run(capsys, src, "-o", tmp_path / "default.mp4", "--model", "bicubic")
    assert rc == 0, err
    v = streams(probe(tmp_path / "default.mp4"), "video")[0]
    assert (v["codec_name"], v["pix_fmt"]) == ("h264", "yuv420p")
    settings = (tmp_path / "default.mp4").read_bytes()  # x264 writes its settings into the stream as text
    assert b"crf=18.0" in settings and b"subme=2" in settings  # CRF 18, and subme 2 is veryfast's
