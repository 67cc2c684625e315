"""The GPU route without TensorFlow: Keras 3 on JAX trains from the patch records through the
TF-free reader and exports a .keras file, in a process where TensorFlow cannot be imported
(as on the GPU machine); the file then loads under TensorFlow with the same outputs."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("jax")

from test_training import make_dataset  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from imagesr.core.dataset import record_files
    from imagesr.training.serving import load_upscaler
    from imagesr.training.trainer import TrainConfig, train
    data, out = sys.argv[1], sys.argv[2]
    res = {}
    for model, args in (("vdsr", {"depth": 4, "width": 16}), ("subpixel", {"width": 16, "blocks": 1}),
                        ("span", {"width": 8, "blocks": 1})):
        cfg = TrainConfig(model=model, scales=(2,), batch_size=16, steps=40, learning_rate=1e-3,
                          model_args=args, log_every=20, shuffle_buffer=128)
        s = train(cfg, record_files(data, "train"), record_files(data, "eval"), f"{out}/{model}")
        frames = np.random.default_rng(0).integers(0, 256, (2, 20, 28, 3), dtype=np.uint8)
        np.save(f"{out}/{model}/frames_out.npy", load_upscaler(f"{out}/{model}")(frames, (40, 56)))
        res[model] = {"backend": s["backend"], "exported": sorted(s["exported"]), "losses": s["loss_log"]}
    # The GPU run's mode: arrays in memory (parsed by spawned workers), a time budget with the
    # cosine sized to the measured speed, several steps per compiled call, bfloat16.
    cfg = TrainConfig(model="subpixel", scales=(2,), batch_size=8, steps=10**6, learning_rate=1e-3,
                      model_args={"width": 8, "blocks": 1}, log_every=1000, in_memory=True, time_budget_s=6,
                      steps_per_execution=2, mixed_precision=True)
    s = train(cfg, record_files(data, "train"), [], f"{out}/budget")
    res["budget"] = {k: s[k] for k in ("steps", "train_seconds", "final_learning_rate")}
    bic = load_upscaler("bicubic")
    frames = np.random.default_rng(1).integers(0, 256, (2, 20, 28, 3), dtype=np.uint8)
    np.save(f"{out}/bicubic_frames.npy", bic(frames, (30, 42)))  # on the device: imagesr.training.layers.bicubic_resize
    # A short last batch is padded to the compiled shape: 4 + 2 frames, one compilation.
    from imagesr.upscale import FrameProcessor
    from imagesr.training.serving import FrameUpscaler
    fresh = FrameUpscaler(None)
    processor = FrameProcessor(fresh, (20, 28), (30, 42), batch=4)
    six = np.random.default_rng(2).integers(0, 256, (6, 20, 28, 3), dtype=np.uint8)
    np.save(f"{out}/bicubic_batched.npy", np.concatenate([processor(six[:4]), processor(six[4:])]))
    res["compiled_shapes"] = len(fresh._jit)
    res["tensorflow_loaded"] = "tensorflow" in sys.modules
    print("RESULT " + json.dumps(res))
""")


def test_train_and_export_on_jax_without_tensorflow(tmp_path):
    data = make_dataset(str(tmp_path / "data"), n_images=2)
    blocker = tmp_path / "no_tf" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no TensorFlow on this machine (the GPU machine has none)')\n")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(tmp_path / "no_tf"))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, data, str(tmp_path / "out")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert res["tensorflow_loaded"] is False
    for model in ("vdsr", "subpixel", "span"):
        assert res[model]["backend"] == "jax" and res[model]["exported"] == ["keras"]
        # the .keras file trained on JAX loads on TensorFlow and computes the same frames
        from imagesr.training.serving import load_upscaler

        frames = np.random.default_rng(0).integers(0, 256, (2, 20, 28, 3), dtype=np.uint8)
        tf_out = load_upscaler(str(tmp_path / "out" / model))(frames, (40, 56))
        jax_out = np.load(tmp_path / "out" / model / "frames_out.npy")
        assert np.abs(tf_out.astype(int) - jax_out).max() <= 1, model
        # exported without the optimizer's state (weights only: a third of the size)
        import zipfile

        import h5py

        with zipfile.ZipFile(tmp_path / "out" / model / "model.keras") as z, h5py.File(z.open("model.weights.h5")) as h:
            assert "optimizer" not in h, model
    # time budget: stopped by the budget, not the step cap, after the whole cosine ran down
    b = res["budget"]
    assert 0 < b["steps"] < 10**6 and b["final_learning_rate"] < 0.1 * 1e-3, b
    assert b["train_seconds"] < 6 * 3, b
    # the bicubic baseline on the device is the MATLAB core (up to float32 rounding ties)
    from imagesr.core.resize import imresize

    frames = np.random.default_rng(1).integers(0, 256, (2, 20, 28, 3), dtype=np.uint8)
    core = np.stack([imresize(f, size=(30, 42)) for f in frames])
    dev = np.load(tmp_path / "out" / "bicubic_frames.npy")
    assert np.abs(dev.astype(int) - core).max() <= 1 and (dev != core).mean() < 0.01
    six = np.random.default_rng(2).integers(0, 256, (6, 20, 28, 3), dtype=np.uint8)
    batched = np.load(tmp_path / "out" / "bicubic_batched.npy")
    assert res["compiled_shapes"] == 1 and batched.shape == (6, 30, 42, 3)
    assert np.abs(batched.astype(int) - np.stack([imresize(f, size=(30, 42)) for f in six])).max() <= 1


def test_upscale_command_on_jax_without_tensorflow(tmp_path):
    """`imagesr upscale` with the JAX backend (the GPU machine's), TensorFlow not importable:
    the same frames as the TensorFlow backend gives for the shipped model."""
    from conftest import make_video

    from imagesr.core.media import decode_image, list_frames
    from imagesr.upscale import DEFAULT_MODEL

    if not os.path.isfile(os.path.join(DEFAULT_MODEL, "model.keras")):
        pytest.skip(f"the shipped model is not installed: {DEFAULT_MODEL}")
    clip = make_video(tmp_path / "clip.mp4", frames=3, size=(36, 64))
    blocker = tmp_path / "no_tf" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no TensorFlow on this machine')\n")
    outs = {}
    for backend in ("jax", "tensorflow"):
        env = dict(os.environ, KERAS_BACKEND=backend)
        if backend == "jax":
            env["PYTHONPATH"] = str(tmp_path / "no_tf")
        out = tmp_path / f"out_{backend}"
        proc = subprocess.run([sys.executable, "-m", "imagesr.cli", "upscale", clip, "-o", str(out)], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "upscaled 3 frames" in proc.stdout
        outs[backend] = np.stack([decode_image(f) for f in list_frames(str(out))])
    assert outs["jax"].shape == (3, 54, 96, 3)
    assert np.abs(outs["jax"].astype(int) - outs["tensorflow"]).max() <= 1


PLANAR_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from imagesr.core import shipped
    from imagesr.upscale import upscale
    from imagesr.training.models import build_model
    from imagesr.training.serving import export_model, load_upscaler
    out, clips = sys.argv[1], sys.argv[2:]
    # a SPAN-SR x1.5 with small random weights (a residual of about two levels), folded at export on JAX
    span = build_model("span", scale=1.5, width=8, blocks=1)
    rng = np.random.default_rng(0)
    for v in span.trainable_variables:
        v.assign(rng.normal(0, 0.01, v.shape).astype("float32"))
    export_model(span, f"{out}/span_x1.5")
    res = {}
    for model in ("bicubic", "subpixel_x1.5", "span_x1.5"):
        up = load_upscaler(f"{out}/span_x1.5" if model == "span_x1.5" else shipped.resolve(model))
        for i, clip in enumerate(clips):
            for planar in (None, False, True):
                r = upscale(clip, f"{out}/{model}_{i}_{planar}.mp4", model=up, size=(72, 96), batch=4, progress=None,
                            planar=planar)
                res[f"{model}_{i}_{planar}"] = [r.planar, r.frames]
    res["tensorflow_loaded"] = "tensorflow" in sys.modules
    print("RESULT " + json.dumps(res))
""")


def test_planar_route_on_jax_gives_the_rgb_route_frames(tmp_path):
    """The planar route (Y'CbCr from the decoder to the encoder, the colour conversions in the
    jitted call) gives the frames of the RGB route up to the chroma filters, for 4:2:0 and
    4:4:4 input, for the bicubic baseline, the shipped default and a SPAN-SR exported on JAX;
    on a CPU (no host link to save) it is used only when asked for."""
    from conftest import make_video

    from imagesr.core.media import iter_video_frames, probe_video
    from imagesr.core.metrics import psnr

    clips = [make_video(tmp_path / "c420.mp4", frames=6, size=(48, 64)),
             make_video(tmp_path / "c444.mp4", frames=6, size=(48, 64), pix_fmt="yuv444p")]
    blocker = tmp_path / "no_tf" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('no TensorFlow on this machine')\n")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(tmp_path / "no_tf"))
    proc = subprocess.run([sys.executable, "-c", PLANAR_SCRIPT, str(tmp_path), *clips], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert res.pop("tensorflow_loaded") is False
    for key, (planar, frames) in res.items():
        assert frames == 6, key
        assert planar == key.endswith("True"), key  # default on a CPU: the RGB route
    for model in ("bicubic", "subpixel_x1.5", "span_x1.5"):
        for i in range(2):
            rgb = np.stack(list(iter_video_frames(str(tmp_path / f"{model}_{i}_False.mp4")))).astype(int)
            planar = np.stack(list(iter_video_frames(str(tmp_path / f"{model}_{i}_True.mp4")))).astype(int)
            assert rgb.shape == planar.shape == (6, 72, 96, 3)
            assert np.abs(rgb - planar).mean() < 2.5, (model, i)
            assert min(psnr(a, b, crop_border=2) for a, b in zip(rgb, planar)) > 38, (model, i)
            assert probe_video(str(tmp_path / f"{model}_{i}_True.mp4")).color_space == "smpte170m"


def test_planar_route_needs_jax(tmp_path):
    """Asked for on the TensorFlow backend, the planar route is a one-line error, no output."""
    from conftest import make_video

    from imagesr.upscale import UpscaleError, upscale

    clip = make_video(tmp_path / "c.mp4", frames=2, size=(48, 64))
    with pytest.raises(UpscaleError, match="planar route needs"):
        upscale(clip, str(tmp_path / "o.mp4"), model="bicubic", progress=None, planar=True)
    assert sorted(os.listdir(tmp_path)) == ["c.mp4"]
