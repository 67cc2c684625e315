"""`imagesr upscale`: video / frame folder / image in and out, through the real ffmpeg binary
and real (tiny) Keras models; odd sizes, tiles, audio, atomic output and bad inputs."""

import os
import subprocess

import numpy as np
import pytest
from conftest import make_video, shared_path, smooth_image, write_png

from imagesr import cli
from imagesr.core.media import decode_image, iter_video_frames, list_frames, probe_video
from imagesr.core.resize import imresize
from imagesr.upscale import DEFAULT_MODEL, FrameProcessor

H, W = 48, 64  # input frames; x1.5 -> 72x96


def _perturb(model, seed=0):
    """Random non-zero weights everywhere: an untrained imagesr model is exactly bicubic
    (zero-initialised last layer), which would hide padding and tiling mistakes."""
    r = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if ws:
            layer.set_weights([r.normal(0, 0.02, w.shape).astype(w.dtype) for w in ws])
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from imagesr.training.models import build_model
    from imagesr.training.serving import export_model

    out = str(tmp_path_factory.mktemp("model") / "subpixel_tiny")
    export_model(_perturb(build_model("subpixel", scale=1.5, width=8, blocks=1)), out)
    return out


@pytest.fixture(scope="module")
def upscaler(model_dir):
    from imagesr.training.serving import load_upscaler

    return load_upscaler(model_dir)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=12, size=(H, W), fps=10)


def _run(capsys, *argv):
    rc = cli.main(["upscale", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _video_frames(path):
    return np.stack(list(iter_video_frames(str(path))))


def _with_audio(video, out, codec):
    """``video`` plus a 1 s 440 Hz sine track (ffmpeg's lavfi source) in ``codec``."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(video), "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", codec,
                    str(out)], check=True)
    return str(out)


def _leftovers(folder):
    return sorted(n for n in os.listdir(folder) if ".partial" in n or n.endswith(".imagesr-lock"))


# --------------------------------------------------------------------------- kinds of input and output


def test_video_to_video_with_model(clip, model_dir, upscaler, tmp_path, capsys):
    out = tmp_path / "up.mp4"
    rc, stdout, _ = _run(capsys, clip, "-o", out, "--model", model_dir, "--batch", "5")
    assert rc == 0
    info = probe_video(str(out))
    assert (info.width, info.height, info.frame_count, info.fps, info.codec) == (96, 72, 12, 10.0, "h264")
    assert not info.has_audio
    frames = _video_frames(out)
    assert frames.shape == (12, 72, 96, 3)
    # the model's output on the decoded input, up to H.264's loss (about 4-6 levels on
    # these tiny noisy frames; the folder test checks the pixels losslessly)
    ref = upscaler(_video_frames(clip), (72, 96))
    assert np.abs(frames.astype(int) - ref).mean() < 8
    line = stdout.strip()
    assert "\n" not in line and line.startswith("upscaled 12 frames in ")
    assert "fps" in line and "subpixel_tiny (subpixel" in line and "64x48 -> 96x72" in line
    assert _leftovers(tmp_path) == []


def test_audio_track_is_kept(tmp_path, capsys):
    src = _with_audio(make_video(tmp_path / "v.mp4", frames=10, size=(H, W), fps=10), tmp_path / "with_audio.mp4", "aac")
    assert probe_video(str(src)).has_audio
    out = tmp_path / "up.mp4"
    rc, stdout, _ = _run(capsys, src, "-o", out, "--model", "bicubic", "--size", "96x72")
    assert rc == 0 and "audio copied" in stdout
    info = probe_video(str(out))
    assert info.has_audio and (info.width, info.height, info.frame_count, info.fps) == (96, 72, 10, 10.0)
    codecs = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0",
                             str(out)], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(codecs) == ["aac,audio", "h264,video"]


def test_audio_that_cannot_be_copied_is_reencoded(tmp_path, capsys):
    # PCM audio: fine in Matroska, not allowed in MP4
    src = _with_audio(make_video(tmp_path / "v.mp4", frames=10, size=(H, W), fps=10), tmp_path / "pcm.mkv", "pcm_s16le")
    out = tmp_path / "up.mp4"
    rc, stdout, _ = _run(capsys, src, "-o", out, "--model", "bicubic")
    assert rc == 0 and "audio re-encoded as AAC" in stdout
    assert probe_video(str(out)).has_audio


def test_folder_to_folder_keeps_names(upscaler, model_dir, tmp_path, capsys):
    src = tmp_path / "frames"
    src.mkdir()
    inputs = [smooth_image(H, W, seed=i) for i in range(3)]
    for i, f in enumerate(inputs):
        write_png(src / f"{i:05d}.png", f)
    out = tmp_path / "up"
    rc, stdout, _ = _run(capsys, src, "-o", out, "--model", model_dir, "--batch", "2")
    assert rc == 0 and stdout.startswith("upscaled 3 frames")
    files = list_frames(str(out))
    assert [os.path.basename(f) for f in files] == ["00000.png", "00001.png", "00002.png"]
    for f, x in zip(files, inputs):
        got = decode_image(f).astype(int)
        assert np.abs(got - upscaler(x, (72, 96))).max() <= 1  # PNG is lossless: the model's own output
    assert _leftovers(tmp_path) == []


def test_image_to_image_bicubic_is_exact_imresize(tmp_path, capsys):
    img = smooth_image(H, W, seed=3)
    src = write_png(tmp_path / "in.png", img)
    for size, expected in ((None, (72, 96)), ("100x50", (50, 100))):
        out = tmp_path / f"out_{expected[1]}.png"
        rc, stdout, _ = _run(capsys, src, "-o", out, "--model", "bicubic", *(["--size", size] if size else []))
        assert rc == 0 and "with bicubic" in stdout
        np.testing.assert_array_equal(decode_image(str(out)), imresize(img, size=expected))
    assert _leftovers(tmp_path) == []


def test_image_to_video_and_video_to_folder(clip, tmp_path, capsys):
    src = write_png(tmp_path / "in.png", smooth_image(H, W))
    rc, _, _ = _run(capsys, src, "-o", tmp_path / "one.mkv", "--model", "bicubic", "--fps", "5")
    assert rc == 0
    info = probe_video(str(tmp_path / "one.mkv"))
    assert (info.width, info.height, info.fps) == (96, 72, 5.0)
    rc, _, _ = _run(capsys, clip, "-o", tmp_path / "frames", "--model", "bicubic", "--scale", "2")
    assert rc == 0
    files = list_frames(str(tmp_path / "frames"))
    assert len(files) == 12 and decode_image(files[0]).shape == (96, 128, 3)
    rc, _, _ = _run(capsys, clip, "-o", tmp_path / "fast.mp4", "--model", "bicubic", "--preset", "ultrafast")
    assert rc == 0 and probe_video(str(tmp_path / "fast.mp4")).frame_count == 12


# --------------------------------------------------------------------------- sizes, padding, tiles


def test_odd_frame_sizes(model_dir, upscaler, tmp_path, capsys):
    odd = make_video(tmp_path / "odd.mp4", frames=5, size=(17, 33), fps=10, pix_fmt="yuv444p")
    rc, _, _ = _run(capsys, odd, "-o", tmp_path / "odd_up.mp4", "--model", model_dir, "--batch", "2")
    assert rc == 0
    info = probe_video(str(tmp_path / "odd_up.mp4"))
    assert (info.width, info.height, info.frame_count) == (50, 26, 5)  # ceil(1.5 x 33), ceil(1.5 x 17)
    img = smooth_image(17, 33, seed=5)
    src = write_png(tmp_path / "odd.png", img)
    rc, _, _ = _run(capsys, src, "-o", tmp_path / "odd_up.png", "--model", model_dir, "--size", "51x27")
    assert rc == 0
    got = decode_image(str(tmp_path / "odd_up.png"))
    assert got.shape == (27, 51, 3)
    assert np.abs(got.astype(int) - FrameProcessor(upscaler, (17, 33), (27, 51))(img[None])[0]).max() <= 1
    # an odd output size encodes too (4:4:4), at exactly that size
    rc, _, err = _run(capsys, src, "-o", tmp_path / "odd_up.mkv", "--model", model_dir, "--size", "51x27")
    assert rc == 0 and "4:4:4" in err
    info = probe_video(str(tmp_path / "odd_up.mkv"))
    assert (info.width, info.height) == (51, 27)
    # padding is exact where it should be: away from the padded border, the same as an even crop
    proc = FrameProcessor(upscaler, (17, 33), (26, 50))
    even = FrameProcessor(upscaler, (16, 32), (24, 48))
    a, b = proc(img[None])[0], even(img[None, :16, :32])[0]
    assert np.abs(a[:18, :40].astype(int) - b[:18, :40]).max() <= 1


def test_tiles_match_untiled(model_dir, upscaler, tmp_path, capsys):
    img = smooth_image(4 * H, 4 * W, seed=7)
    src = write_png(tmp_path / "big.png", img)
    outs = {}
    for tile in (None, 64):
        out = tmp_path / f"tile_{tile}.png"
        rc, _, _ = _run(capsys, src, "-o", out, "--model", model_dir, *(["--tile", tile] if tile else []))
        assert rc == 0
        outs[tile] = decode_image(str(out)).astype(int)
    assert outs[64].shape == (288, 384, 3)
    assert np.abs(outs[64] - outs[None]).max() <= 1
    # odd sizes with tiles (padding + tiles), and VDSR (tiles of the bicubic-upscaled frame)
    from imagesr.training.models import build_model
    from imagesr.training.serving import FrameUpscaler

    odd = img[:37, :53]
    full = FrameProcessor(upscaler, (37, 53), (56, 80))(odd[None])
    tiles = FrameProcessor(upscaler, (37, 53), (56, 80), tile=10)(odd[None])
    assert tiles.shape == (1, 56, 80, 3) and np.abs(tiles.astype(int) - full).max() <= 1
    vdsr = FrameUpscaler(_perturb(build_model("vdsr", depth=4, width=8)))
    full = FrameProcessor(vdsr, (37, 53), (56, 80))(odd[None])
    tiles = FrameProcessor(vdsr, (37, 53), (56, 80), tile=12)(odd[None])
    assert np.abs(tiles.astype(int) - full).max() <= 1
    assert np.abs(full.astype(int) - imresize(odd, size=(56, 80))).mean() > 0.5  # the model does something


# --------------------------------------------------------------------------- atomic output


def _truncated_clip(tmp_path):
    """A clip whose second half is cut off: decoding fails after some frames."""
    good = make_video(tmp_path / "good.mp4", frames=24, size=(H, W), fps=10,
                      extra_args=["-g", "1", "-movflags", "+faststart"])
    data = open(good, "rb").read()
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(data[: len(data) // 2])
    os.remove(good)
    return str(bad)


def test_failure_mid_run_leaves_no_output(tmp_path, model_dir, capsys):
    src = _truncated_clip(tmp_path)
    decoded = 0
    with pytest.raises(Exception, match="truncated"):
        for _ in iter_video_frames(src):
            decoded += 1
    assert decoded >= 4  # the run really fails mid-way, after some batches were written
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for out in ("up.mp4", "frames"):
        rc, _, err = _run(capsys, src, "-o", out_dir / out, "--model", model_dir, "--batch", "2")
        assert rc == 2 and "truncated" in err and "Traceback" not in err
        assert os.listdir(out_dir) == []
    # a container that cannot hold H.264 is refused before anything starts
    rc, _, err = _run(capsys, write_png(tmp_path / "in.png", smooth_image(H, W)), "-o", out_dir / "up.webm",
                      "--model", "bicubic")
    assert rc == 2 and "cannot hold" in err and "up.webm" in err
    assert os.listdir(out_dir) == []


def test_existing_output_is_replaced_only_when_complete(clip, tmp_path, capsys):
    out = tmp_path / "up.mp4"
    out.write_bytes(b"previous")
    rc, _, _ = _run(capsys, _truncated_clip(tmp_path), "-o", out, "--model", "bicubic")
    assert rc == 2 and out.read_bytes() == b"previous" and _leftovers(tmp_path) == []
    rc, _, _ = _run(capsys, clip, "-o", out, "--model", "bicubic")
    assert rc == 0 and probe_video(str(out)).frame_count == 12


def test_temporary_names_are_the_runs_own(tmp_path):
    from imagesr.core.outputs import claim_partial, is_partial_of

    target = str(tmp_path / "out.mp4")
    a, b = claim_partial(target), claim_partial(target)
    assert a != b and os.path.isfile(a) and a.endswith(".mp4") and is_partial_of(os.path.basename(a), target)
    folder = claim_partial(str(tmp_path / "frames"), folder=True)
    assert os.path.isdir(folder) and os.path.basename(folder).startswith("frames.partial-")


# --------------------------------------------------------------------------- bad inputs


def _bad_inputs(tmp_path, clip):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    audio_only = tmp_path / "audio_only.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:a", "aac", str(audio_only)], check=True)
    # a codec ffmpeg has no decoder for: an AVI whose FourCC names an unknown codec
    avi = make_video(tmp_path / "h264.avi", frames=4, size=(H, W))
    unknown = tmp_path / "unknown_codec.avi"
    unknown.write_bytes(open(avi, "rb").read().replace(b"H264", b"QQQQ"))
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    img = write_png(tmp_path / "in.png", smooth_image(H, W))
    out = tmp_path / "out" / "up.mp4"
    return [
        ((corrupt, "-o", out, "--model", "bicubic"), "not a readable video"),
        ((audio_only, "-o", out, "--model", "bicubic"), "no video stream"),
        ((unknown, "-o", out, "--model", "bicubic"), "unknown_codec.avi"),
        ((tmp_path / "missing.mp4", "-o", out, "--model", "bicubic"), "no such file"),
        ((clip, "-o", out, "--model", tmp_path / "no_model"), "no such model"),
        ((clip, "-o", out, "--model", corrupt), "not a model"),
        ((clip, "-o", blocker / "up.mp4", "--model", "bicubic"), "is not a folder"),
        ((clip, "-o", tmp_path / "missing_dir" / "up.mp4", "--model", "bicubic"), "does not exist"),
        ((clip, "-o", out, "--model", "bicubic", "--size", "1920*1080"), "expected WIDTHxHEIGHT"),
        ((clip, "-o", out, "--model", "bicubic", "--size", "1920"), "expected WIDTHxHEIGHT"),
        ((clip, "-o", out, "--model", "bicubic", "--size", "0x100"), "must be positive"),
        ((clip, "-o", out, "--model", "bicubic", "--size", "32x24"), "only enlarges"),
        ((clip, "-o", out, "--model", "bicubic", "--size", "96x72", "--scale", "2"), "not both"),
        ((clip, "-o", tmp_path / "out" / "up.txt", "--model", "bicubic"), "output kind"),
        ((clip, "-o", tmp_path / "out" / "up.png", "--model", "bicubic"), "an image holds one frame"),
        ((img, "-o", out, "--model", "bicubic", "--batch", "0"), "--batch"),
        ((clip, "-o", tmp_path / "out" / "x.mp4", "--model", "bicubic", "--fps", "5"), "--fps"),
        ((clip, "-o", out, "--model", "bicubic", "--preset", "fastest"), "--preset 'fastest'"),
    ]


def test_bad_inputs_give_one_line_and_no_output(tmp_path, clip, capsys):
    (tmp_path / "out").mkdir()
    for argv, message in _bad_inputs(tmp_path, clip):
        rc, stdout, err = _run(capsys, *argv)
        assert rc == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("imagesr: error: "), (argv, err)
        assert message in lines[0], (argv, lines[0])
        assert stdout == "" and os.listdir(tmp_path / "out") == [], argv


def test_default_model(clip, tmp_path, capsys):
    """The shipped model when installed; otherwise a clear error that says what to pass."""
    rc, stdout, err = _run(capsys, clip, "-o", tmp_path / "up.mp4")
    if os.path.isfile(os.path.join(DEFAULT_MODEL, "model.keras")):
        assert rc == 0 and "with subpixel_x1.5 (subpixel" in stdout and "64x48 -> 96x72" in stdout
    else:
        assert rc == 2 and "--model bicubic" in err and "subpixel_x1.5" in err
        assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_shipped_model_beats_bicubic_on_real_footage(tmp_path, capsys):
    from imagesr.core.media import encode_video
    from imagesr.core.metrics import psnr

    video = shared_path("video", "cockatoo.mp4")
    if not os.path.isfile(os.path.join(DEFAULT_MODEL, "model.keras")):
        pytest.skip(f"the shipped model is not installed: {DEFAULT_MODEL}")
    originals = list(iter_video_frames(video, stride=10, limit=4))
    assert originals[0].shape == (720, 1280, 3)
    lr = tmp_path / "lr.mkv"
    encode_video(str(lr), [imresize(f, size=(480, 854)) for f in originals], fps=20, crf=0)
    scores = {}
    for model in ("default", "bicubic"):
        out = tmp_path / model  # PNG frames: measure the model, not the H.264 encoder
        rc, _, err = _run(capsys, lr, "-o", out, "--size", "1280x720", *(["--model", "bicubic"] if model == "bicubic" else []))
        assert rc == 0, err
        frames = [decode_image(f) for f in list_frames(str(out))]
        assert len(frames) == len(originals)
        scores[model] = np.mean([psnr(a, b, crop_border=2) for a, b in zip(frames, originals)])
    print(f"mean Y-PSNR 854x480 -> 1280x720: {scores}")
    assert scores["default"] > scores["bicubic"], scores


@pytest.mark.parametrize("compiles", [True, False])
def test_short_last_batch_is_padded_only_where_shapes_compile(compiles):
    """JAX compiles per batch shape, so the last short batch is padded to the compiled one;
    TensorFlow traces once for all shapes, so padding would only waste compute."""
    from imagesr.training.serving import ServingBackend
    from imagesr.upscale import FrameProcessor

    seen = []

    class Recorder:  # a bicubic-kind upscaler that records the batch sizes it is given
        kind, scale, parameters = "bicubic", None, 0
        backend = ServingBackend("jax" if compiles else "tensorflow", jit=compiles, accelerator=False)

        def __call__(self, frames, size):
            seen.append(len(frames))
            return np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)

    processor = FrameProcessor(Recorder(), (8, 10), (16, 20), batch=4)
    frames = np.random.default_rng(0).integers(0, 256, (6, 8, 10, 3), dtype=np.uint8)
    out = np.concatenate([processor(frames[:4]), processor(frames[4:])])
    assert seen == ([4, 4] if compiles else [4, 2])
    assert np.array_equal(out, np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2))
