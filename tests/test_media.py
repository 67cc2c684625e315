import io
import os
import shutil
import subprocess

import numpy as np
import pytest
from conftest import make_video, shared_path, smooth_image, write_png
from PIL import Image

from imagesr.core import media
from imagesr.core.media import MediaError

# --------------------------------------------------------------------------- images


def test_rgb_png_roundtrip(tmp_path):
    img = smooth_image(20, 30)
    out = media.decode_image(write_png(tmp_path / "a.png", img))
    np.testing.assert_array_equal(out, img)


def test_grayscale_becomes_rgb(tmp_path):
    g = smooth_image(10, 12)[..., 0]
    out = media.decode_image(write_png(tmp_path / "g.png", g))
    assert out.shape == (10, 12, 3) and (out[..., 0] == g).all() and (out[..., 2] == g).all()


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top opaque red, bottom transparent
    out = media.decode_image(write_png(tmp_path / "t.png", rgba))
    assert out.shape == (4, 4, 3)
    assert tuple(out[0, 0]) == (200, 0, 0)
    assert tuple(out[3, 3]) == (255, 255, 255)


def test_16bit_scaled_to_8bit(tmp_path):
    a = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    path = tmp_path / "deep.png"
    Image.fromarray(a).save(path)
    assert Image.open(path).mode.startswith("I")
    out = media.decode_image(str(path))
    assert out.dtype == np.uint8 and out.shape == (8, 8, 3)
    assert out[0, 0, 0] == 0 and out[7, 7, 0] == round(63000 * 255 / 65535)


def test_palette_and_cmyk(tmp_path):
    img = Image.fromarray(smooth_image(16, 16)).convert("P")
    img.save(tmp_path / "p.png")
    assert media.decode_image(str(tmp_path / "p.png")).shape == (16, 16, 3)
    Image.fromarray(smooth_image(16, 16)).convert("CMYK").save(tmp_path / "c.jpg")
    assert media.decode_image(str(tmp_path / "c.jpg")).shape == (16, 16, 3)


def test_exif_orientation_applied(tmp_path):
    img = Image.fromarray(smooth_image(10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "o.jpg", exif=exif.tobytes())
    assert media.decode_image(str(tmp_path / "o.jpg")).shape == (20, 10, 3)


def test_corrupt_png_names_file(tmp_path):
    good = io.BytesIO()
    Image.fromarray(smooth_image(32, 32)).save(good, format="PNG")
    data = bytearray(good.getvalue())
    data[60:80] = b"\x00" * 20  # damage the IDAT stream
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="corrupt.png"):
        media.decode_image(str(path))


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(smooth_image(64, 64)).save(buf, format="JPEG")
    path = tmp_path / "trunc.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(MediaError, match="trunc.jpg.*(truncated|corrupt)"):
        media.decode_image(str(path))


def test_zero_byte_missing_and_text(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match="empty.png: empty file"):
        media.decode_image(str(tmp_path / "empty.png"))
    with pytest.raises(MediaError, match="no such file"):
        media.decode_image(str(tmp_path / "nope.png"))
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(MediaError, match="notes.png: not an image"):
        media.decode_image(str(tmp_path / "notes.png"))


# --------------------------------------------------------------------------- video


def test_probe_and_iterate_with_stride_and_limit(tmp_path):
    path = make_video(tmp_path / "v.mp4", frames=12, size=(48, 64))
    info = media.probe_video(path)
    assert (info.width, info.height, info.frame_count) == (64, 48, 12)
    assert info.fps == pytest.approx(10.0) and info.pix_fmt == "yuv420p"
    frames = list(media.iter_video_frames(path))
    assert len(frames) == 12 and frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert len(list(media.iter_video_frames(path, stride=5))) == 3  # frames 0, 5, 10
    assert len(list(media.iter_video_frames(path, stride=2, limit=4))) == 4
    # stride picks the same frames as decoding everything
    np.testing.assert_array_equal(list(media.iter_video_frames(path, stride=5))[1], frames[5])


def test_odd_frame_size_444(tmp_path):
    path = make_video(tmp_path / "odd.mp4", frames=3, size=(17, 33), pix_fmt="yuv444p")
    info = media.probe_video(path)
    assert (info.width, info.height, info.pix_fmt) == (33, 17, "yuv444p")
    frames = list(media.iter_video_frames(path))
    assert len(frames) == 3 and frames[0].shape == (17, 33, 3)


def test_truncated_mp4(tmp_path):
    path = make_video(tmp_path / "full.mp4", frames=30, size=(64, 64))
    data = open(path, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # moov atom (at the end) lost
    with pytest.raises(MediaError, match="cut.mp4"):
        list(media.iter_video_frames(str(cut)))


def test_truncated_faststart_mp4_is_not_silently_short(tmp_path):
    path = make_video(tmp_path / "fs.mp4", frames=30, size=(64, 64), extra_args=("-movflags", "+faststart"))
    data = open(path, "rb").read()
    cut = tmp_path / "fs_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])  # index intact, media data cut
    with pytest.raises(MediaError, match="fs_cut.mp4"):
        list(media.iter_video_frames(str(cut)))


def test_text_file_named_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    with pytest.raises(MediaError, match="notes.mp4: not a readable video"):
        media.probe_video(str(p))
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        media.probe_video(str(tmp_path / "zero.mp4"))


def test_missing_ffmpeg_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGESR_FFMPEG", str(tmp_path / "no-ffmpeg"))
    with pytest.raises(media.FFmpegNotFound, match="no executable ffmpeg"):
        media.probe_video(make_video(tmp_path / "v.mp4", frames=2))
    monkeypatch.delenv("IMAGESR_FFMPEG")
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg on PATH
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)
    with pytest.raises(media.FFmpegNotFound, match="apt-get install ffmpeg"):
        media.ffmpeg_binary()


def test_probe_without_ffprobe_uses_banner(tmp_path, monkeypatch):
    lone = tmp_path / "bin"
    lone.mkdir()
    os.symlink(shutil.which("ffmpeg"), lone / "ffmpeg")  # no ffprobe beside it
    monkeypatch.setenv("IMAGESR_FFMPEG", str(lone / "ffmpeg"))
    info = media.probe_video(make_video(tmp_path / "v.mp4", frames=4, size=(18, 30)))
    assert (info.width, info.height) == (30, 18) and info.fps == pytest.approx(10)
    assert len(list(media.iter_video_frames(info.path, info=info))) == 4


@pytest.mark.parametrize("tag,turned", [("90", True), ("180", False), ("270", True)])
@pytest.mark.parametrize("probe", ["ffprobe", "banner"])
def test_rotated_phone_clip_decodes_upright_at_its_display_size(tmp_path, monkeypatch, tag, turned, probe):
    """A phone clip stores landscape pixels plus a display rotation, and ffmpeg turns the
    frames when decoding. Read at the stored size, the same bytes would reshape into
    garbage without any error, so the probe must report the display size."""
    src = make_video(tmp_path / "src.mp4", frames=3, size=(18, 30))
    rotated = str(tmp_path / "rot.mp4")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", src, "-c", "copy",
                    "-metadata:s:v:0", f"rotate={tag}", rotated], check=True)
    if probe == "banner":
        lone = tmp_path / "bin"
        lone.mkdir()
        os.symlink(shutil.which("ffmpeg"), lone / "ffmpeg")  # no ffprobe beside it
        monkeypatch.setenv("IMAGESR_FFMPEG", str(lone / "ffmpeg"))
    info = media.probe_video(rotated)
    assert info.rotation in ((90, 270) if turned else (180,))
    assert (info.width, info.height) == ((18, 30) if turned else (30, 18))
    upright = list(media.iter_video_frames(rotated, info=info))
    stored = list(media.iter_video_frames(src))
    assert len(upright) == 3 and upright[0].shape == (info.height, info.width, 3)
    # The same decoded pixels, turned by a quarter or half turn: exactly, not approximately.
    turns = [k for k in range(4) if np.rot90(stored[0], k).shape == upright[0].shape
             and np.array_equal(np.rot90(stored[0], k), upright[0])]
    assert turns == [info.rotation // 90]


def test_encode_video_roundtrip_is_atomic(tmp_path):
    frames = [smooth_image(32, 48, seed=i) for i in range(5)]
    out = tmp_path / "enc.mp4"
    media.encode_video(str(out), frames, fps=5)
    assert out.exists() and not list(tmp_path.glob("*.partial*"))
    back = list(media.iter_video_frames(str(out)))
    assert len(back) == 5
    with pytest.raises(ValueError):
        media.encode_video(str(tmp_path / "bad.mp4"), [frames[0], smooth_image(10, 10)])
    assert not list(tmp_path.glob("bad*"))


@pytest.mark.shared_data
@pytest.mark.parametrize("name,size,count", [
    ("cockatoo.mp4", (720, 1280), 280),  # H.264 4:4:4
    ("apple.mp4", (720, 1296), 50),
    ("bikes.mp4", (272, 640), 250),
    ("carphone_pristine.mp4", (144, 176), 120),
])
def test_real_clips(name, size, count):
    path = shared_path("video", name)
    info = media.probe_video(path)
    assert (info.height, info.width) == size and info.frame_count == count
    frames = list(media.iter_video_frames(path, stride=10, limit=3))
    assert len(frames) == 3 and frames[0].shape == size + (3,)
    assert frames[0].std() > 5  # real content, not a blank decode


# --------------------------------------------------------------------------- frame folders


def test_frame_folder(tmp_path):
    for i in range(5):
        write_png(tmp_path / f"{i:05d}.png", smooth_image(8, 8, seed=i))
    (tmp_path / "notes.txt").write_text("x")
    frames = list(media.iter_frames(str(tmp_path), stride=2))
    assert len(frames) == 3
    with pytest.raises(MediaError, match="no such folder"):
        list(media.iter_folder_frames(str(tmp_path / "missing")))


def test_empty_frame_folder(tmp_path):
    (tmp_path / "seq").mkdir()
    with pytest.raises(MediaError, match="no image frames"):
        list(media.iter_folder_frames(str(tmp_path / "seq")))


@pytest.mark.shared_data
def test_davis_sequence():
    seq = shared_path("davis", "DAVIS", "JPEGImages", "480p", "blackswan")
    frames = list(media.iter_folder_frames(seq, stride=10, limit=2))
    assert len(frames) == 2 and frames[0].shape == (480, 854, 3)


@pytest.mark.parametrize("line,expected,option", [
    ("ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright (c) 2000-2021", (4, 4), "-vsync"),
    ("ffmpeg version 4.2.2-static https://johnvansickle.com/ffmpeg/", (4, 2), "-vsync"),
    ("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026", (5, 1), "-fps_mode"),
    ("ffmpeg version n7.1 Copyright (c) 2000-2024", (7, 1), "-fps_mode"),
    ("ffmpeg version N-112233-g0123abcd Copyright (c) 2000-2024", (99, 0), "-fps_mode"),
])
def test_frame_timing_option_follows_the_ffmpeg_version(tmp_path, monkeypatch, line, expected, option):
    """ffmpeg 5.1 renamed -vsync to -fps_mode; 4.x (Ubuntu 22.04's, older static builds) knows
    only -vsync: the decoder and encoder ask for the one the binary in use knows."""
    from imagesr.core.media.files import ffmpeg_version, passthrough_timing

    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\necho '{line}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("IMAGESR_FFMPEG", str(fake))
    assert ffmpeg_version(str(fake)) == expected
    assert passthrough_timing()[0] == option and passthrough_timing("0")[0].startswith(option)
