"""Y'CbCr <-> RGB (imagesr.core.colour) against the real ffmpeg, the matrix policy, and colour
tags on what imagesr writes: an HD video comes out tagged BT.709 and converted with it, so a
player shows the colours that went in."""

import subprocess

import numpy as np
import pytest
from conftest import make_video, smooth_image

from imagesr.core.colour import PlanarFormat, output_matrix, stream_matrix
from imagesr.core.media import VideoWriter, ffmpeg_binary, iter_video_frames, probe_video
from imagesr.core.media.probe import _banner_colour, _probe_from_banner


def _ffmpeg(args, data: bytes) -> bytes:
    cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", *args]
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


@pytest.mark.parametrize("matrix", ["bt709", "bt601"])
def test_from_rgb_matches_ffmpeg(matrix):
    img = smooth_image(64, 96, seed=3)
    h, w = img.shape[:2]
    fmt = PlanarFormat("yuv420p", h, w, matrix)
    ours = fmt.from_rgb(img[None])[0].astype(int)
    sws = {"bt709": "bt709", "bt601": "smpte170m"}[matrix]
    theirs = np.frombuffer(_ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-i", "-", "-vf",
                                    f"scale=out_color_matrix={sws}:out_range=tv,format=yuv420p", "-f", "rawvideo", "-"],
                                   img.tobytes()), np.uint8).astype(int)
    n = h * w
    assert ours.shape == theirs.shape == (fmt.frame_bytes,)
    assert np.abs(ours[:n] - theirs[:n]).max() <= 1  # luma: the same matrix, rounding only
    assert np.abs(ours[n:] - theirs[n:]).mean() < 1.0  # chroma: a different (sited) 2:1 filter


def test_to_rgb_matches_ffmpeg_and_round_trips():
    img = smooth_image(64, 96, seed=4)
    h, w = img.shape[:2]
    fmt = PlanarFormat("yuv420p", h, w, "bt709")
    yuv = fmt.from_rgb(img[None])
    ours = fmt.to_rgb(yuv)[0]
    theirs = np.frombuffer(_ffmpeg(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-i", "-", "-vf",
                                    "scale=in_color_matrix=bt709:in_range=tv,format=rgb24", "-f", "rawvideo", "-"],
                                   yuv.tobytes()), np.uint8).reshape(h, w, 3)
    assert ours.dtype == np.float32 and ours.min() >= 0 and ours.max() <= 255 and np.all(ours == np.floor(ours))
    assert np.abs(ours - theirs).mean() < 3.0  # the chroma filters differ (noisy test image)
    # 4:2:0 loses chroma detail; our sited filters lose no more of it than ffmpeg's
    assert np.abs(ours - img).mean() <= np.abs(theirs.astype(int) - img).mean() + 0.05
    full = PlanarFormat("yuv444p", h, w, "bt601", full_range=True)
    assert np.abs(full.to_rgb(full.from_rgb(img[None]))[0] - img).max() <= 2


def test_planar_format_checks():
    with pytest.raises(ValueError, match="even sides"):
        PlanarFormat("yuv420p", 9, 16)
    with pytest.raises(ValueError, match="unsupported"):
        PlanarFormat("nv12", 8, 16)
    assert PlanarFormat("yuv420p", 720, 1280).frame_bytes == 1280 * 720 * 3 // 2
    assert PlanarFormat("yuv444p", 720, 1280).frame_bytes == 1280 * 720 * 3


def test_matrix_policy():
    assert stream_matrix("bt709", 640, 360) == "bt709"  # a tag wins over the size
    assert stream_matrix("smpte170m", 1920, 1080) == "bt601"
    assert stream_matrix("bt470bg", 1920, 1080) == "bt601"
    assert stream_matrix(None, 1280, 720) == "bt709"  # untagged: as players show it
    assert stream_matrix(None, 720, 576) == "bt601"
    assert output_matrix(1920, 1080) == "bt709" and output_matrix(96, 72) == "bt601"
    assert _banner_colour("tv, bt709, progressive") == ("bt709", "tv")
    assert _banner_colour("pc, smpte170m/unknown/unknown") == ("smpte170m", "pc")
    assert _banner_colour("progressive") == (None, None) and _banner_colour(None) == (None, None)


@pytest.mark.parametrize("size,matrix,tag", [((720, 1280), "bt709", "bt709"), ((72, 96), "bt601", "smpte170m")])
def test_written_video_is_tagged_and_converted_with_its_matrix(tmp_path, size, matrix, tag):
    """Saturated colours survive encode -> decode (an untagged HD file converted with BT.601,
    as before, is shown shifted by up to about 20 levels by players that assume BT.709)."""
    h, w = size
    frame = np.zeros((h, w, 3), np.uint8)
    bars = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (200, 120, 40), (30, 60, 90)]
    for i, c in enumerate(bars):
        frame[:, i * w // 8:(i + 1) * w // 8] = c
    path = str(tmp_path / "bars.mp4")
    with VideoWriter(path, size, 25, crf=0) as writer:
        writer.write(np.stack([frame] * 2))
    info = probe_video(path)
    assert (info.color_space, info.color_range, info.matrix) == (tag, "tv", matrix)
    assert _probe_from_banner(path, ffmpeg_binary()).color_space == tag
    decoded = next(iter(iter_video_frames(path))).astype(int)
    inner = (slice(2, h - 2), [slice(i * w // 8 + 3, (i + 1) * w // 8 - 3) for i in range(8)])
    for i, c in enumerate(bars):
        got = decoded[inner[0], inner[1][i]].reshape(-1, 3).mean(axis=0)
        assert np.abs(got - c).max() <= 3, (c, got)
    # ffmpeg's own reading of the file (its tags) agrees
    raw = _ffmpeg(["-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], b"")
    theirs = np.frombuffer(raw, np.uint8).reshape(h, w, 3).astype(int)
    assert np.abs(theirs[inner[0], inner[1][0]].reshape(-1, 3).mean(axis=0) - bars[0]).max() <= 3


def test_planar_frames_decode_and_encode_unconverted(tmp_path):
    clip = make_video(tmp_path / "c.mp4", frames=3, size=(48, 64))
    info = probe_video(clip)
    fmt = info.planar_format()
    assert fmt == PlanarFormat("yuv420p", 48, 64, "bt601")
    planes = np.stack(list(iter_video_frames(clip, planar=fmt)))
    assert planes.shape == (3, fmt.frame_bytes) and planes.dtype == np.uint8
    rgb = np.stack(list(iter_video_frames(clip))).astype(np.float32)
    assert np.abs(fmt.to_rgb(planes) - rgb).mean() < 2.0
    out = str(tmp_path / "p.mp4")
    with VideoWriter(out, (48, 64), 10, crf=0, planar=fmt) as writer:
        writer.write(planes)
    again = np.stack(list(iter_video_frames(out, planar=probe_video(out).planar_format())))
    assert np.abs(again.astype(int) - planes).max() <= 1  # lossless x264 of the same planes
    assert probe_video(out).color_space == "smpte170m"
    with pytest.raises(ValueError, match="bytes"):
        with VideoWriter(str(tmp_path / "bad.mp4"), (48, 64), 10, planar=fmt) as writer:
            writer.write(np.zeros((1, 10), np.uint8))
    assert not (tmp_path / "bad.mp4").exists()
    assert PlanarFormat("yuv420p", 8, 8).frame_bytes == 8 * 8 * 3 // 2 and PlanarFormat("yuv444p", 8, 8).frame_bytes == 192
    with pytest.raises(ValueError, match="even sides"):
        PlanarFormat("yuv420p", 7, 8)
