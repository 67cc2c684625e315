"""SPAN-SR and its re-parameterisable convolution on the TensorFlow backend: shapes, size and
cost, the fold (branches == one conv), export and loading (.keras in safe mode, SavedModel,
the upscaler), warm starts from a folded model, the command line. The JAX backend:
tests/test_jax_backend.py."""

import json
import math
import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from test_training import make_dataset  # noqa: E402

from imagesr.core.scale import Scale  # noqa: E402
from imagesr.training.layers import BicubicResize  # noqa: E402
from imagesr.training.models import SPECS, architecture, build_model, multiply_adds, spec_of  # noqa: E402
from imagesr.training.reparam import RepConv3x3, fold  # noqa: E402
from imagesr.training.serving import export_model, load_keras_model, load_upscaler  # noqa: E402

SCALES = (2, 3, 4, 1.5)
HD = (1080, 1920)


def _lr_of_hd(scale):
    """The LR frame that upscales to 1920x1080 (x1.5: 1280x720)."""
    s = Scale(scale)
    return tuple(int(v / s) for v in HD)


def _randomise(model, seed=0, std=0.05):
    """Non-zero weights everywhere (the last conv starts at zero, the biases too)."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        v.assign(rng.normal(0, std, v.shape).astype("float32"))
    return model


@pytest.mark.parametrize("scale", SCALES)
def test_shapes_and_an_untrained_model_is_bicubic(scale):
    m = build_model("span", scale=scale, width=8, blocks=1)
    assert spec_of(m) is SPECS["span"] and SPECS["span"].scale_of(m) == Scale(scale)
    x = np.random.default_rng(1).uniform(0, 255, (2, 12, 18, 3)).astype("float32")
    y = np.asarray(m(x))
    s = Scale(scale)
    assert y.shape == (2, s.hr_side(12), s.hr_side(18), 3)
    assert np.array_equal(y, np.asarray(BicubicResize(scale)(x)))  # the residual starts at zero


def _expected_parameters(scale, width, blocks, gain, folded):
    s = Scale(scale)
    cin, cout = 3 * s.unshuffle ** 2, 3 * s.shuffle ** 2

    def rep(i, o):  # one re-parameterisable 3x3 conv: served as 9*i*o + o
        if folded:
            return 9 * i * o + o
        return i * gain * i + gain * i + 9 * gain * i * gain * o + gain * o + gain * o * o + o + i * o + o

    return (rep(cin, width) + 3 * blocks * rep(width, width) + rep(width, width)
            + 4 * width * width + width + 9 * width * cout + cout)


@pytest.mark.parametrize("scale", SCALES)
def test_default_size_and_cost_within_the_efficient_budget(scale):
    """At most 600k parameters served and 300 G multiply-adds per 1080p output frame, at every
    scale; the training form's extra branches cost nothing at serving time."""
    m = build_model("span", scale=scale)
    served = fold(m)
    args = architecture(m)["model_args"]
    assert args == {"channels": 3, "width": 52, "blocks": 6, "gain": 2}
    assert m.count_params() == _expected_parameters(scale, 52, 6, 2, folded=False)
    assert served.count_params() == _expected_parameters(scale, 52, 6, 2, folded=True) <= 600_000
    macs = multiply_adds(m, _lr_of_hd(scale), HD)
    assert macs == multiply_adds(served, _lr_of_hd(scale), HD) <= 300e9
    grid = SPECS["span"].convolution_grid(Scale(scale))
    positions = (_lr_of_hd(scale)[0] // grid) * (_lr_of_hd(scale)[1] // grid)
    assert macs == positions * (served.count_params() - sum(  # every weight once per position, biases aside
        int(layer.bias.shape[0]) for layer in served.layers if isinstance(layer, keras.layers.Conv2D)))
    assert SPECS["span"].receptive_radius(m) == SPECS["span"].receptive_radius(served) == 6 * 3 + 3


def test_rep_conv_is_its_branches():
    """The one convolution the layer runs equals the paper's branch-by-branch computation,
    biases at the borders included."""
    layer = RepConv3x3(12, gain=2)
    x = np.random.default_rng(2).normal(0, 1, (2, 9, 11, 7)).astype("float32")
    layer.build(x.shape)
    _randomise(layer, seed=3, std=0.2)
    one, branches = np.asarray(layer(x)), np.asarray(layer.branches(x))
    assert one.shape == branches.shape == (2, 9, 11, 12)
    assert np.abs(one).mean() > 0.1
    np.testing.assert_allclose(one, branches, atol=2e-5 * np.abs(branches).max())
    # and a kernel set from outside (a warm start from a folded model) folds back to itself
    rng = np.random.default_rng(4)
    k, b = rng.normal(0, 0.1, (3, 3, 7, 12)).astype("float32"), rng.normal(0, 0.1, 12).astype("float32")
    layer.set_folded(k, b)
    got_k, got_b = (np.asarray(keras.ops.convert_to_numpy(t)) for t in layer.folded())
    np.testing.assert_allclose(got_k, k, atol=1e-5)
    np.testing.assert_allclose(got_b, b, atol=1e-5)


@pytest.mark.parametrize("scale", (2, 1.5))
def test_fold_gives_plain_convolutions_and_the_same_frames(scale):
    m = _randomise(build_model("span", scale=scale, width=8, blocks=2))
    served = fold(m)
    assert not any(isinstance(layer, RepConv3x3) for layer in served.layers)
    reps = [layer.name for layer in m.layers if isinstance(layer, RepConv3x3)]
    assert len(reps) == 1 + 3 * 2 + 1
    assert all(type(served.get_layer(n)) is keras.layers.Conv2D for n in reps)
    assert served.count_params() < m.count_params() / 3
    x = np.random.default_rng(5).uniform(0, 255, (2, 16, 20, 3)).astype("float32")
    want, got = np.asarray(m(x)), np.asarray(served(x))
    assert np.abs(want - np.asarray(BicubicResize(scale)(x))).mean() > 1  # the network does something
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert fold(served) is served  # nothing left to fold


def test_export_loads_in_safe_mode_serves_and_warm_starts(tmp_path):
    from imagesr.training.trainer import TrainConfig, build_or_load

    m = _randomise(build_model("span", scale=2, width=8, blocks=1), seed=6)
    out = str(tmp_path / "run")
    written = export_model(m, out)
    assert sorted(written) == ["keras", "saved_model"]
    loaded = load_keras_model(out)  # safe_mode=True: only registered layers, no lambdas
    assert loaded.name == "span_x2" and not any(isinstance(layer, RepConv3x3) for layer in loaded.layers)
    assert architecture(loaded) == {"name": "span", "scale": Scale(2),
                                    "model_args": {"channels": 3, "width": 8, "blocks": 1}}
    frames = np.random.default_rng(7).integers(0, 256, (2, 14, 18, 3), dtype=np.uint8)
    want = np.clip(np.floor(np.asarray(m(frames.astype("float32"))) + 0.5), 0, 255)
    up = load_upscaler(out)
    assert up.kind == "span" and up.scale == Scale(2) and up.parameters == loaded.count_params()
    got = up(frames, (28, 36))
    assert np.abs(got.astype(int) - want).max() <= 1 and (got != want).mean() < 1e-3
    sm = tf.saved_model.load(os.path.join(out, "saved_model"))
    served = sm.signatures["serve"](frames=tf.constant(frames), size=tf.constant([28, 36], tf.int32))["frames"].numpy()
    assert np.abs(served.astype(int) - got).max() <= 1
    # a warm start from the exported (folded) model trains the branches again, from its function
    warm = build_or_load(TrainConfig(model="span", scales=(2,), model_args={"gain": 3}, warm_start=out))
    assert isinstance(warm.get_layer("head"), RepConv3x3) and warm.get_layer("head").gain == 3
    np.testing.assert_allclose(np.asarray(warm(frames.astype("float32"))), np.asarray(loaded(frames.astype("float32"))),
                               atol=2e-2)
    with pytest.raises(ValueError, match="width=16"):
        build_or_load(TrainConfig(model="span", scales=(2,), model_args={"width": 16}, warm_start=out))


def test_cli_trains_and_evaluates_span(tmp_path, capsys):
    from conftest import smooth_image, write_png

    from imagesr import cli

    data = make_dataset(str(tmp_path / "data"), n_images=2)
    bench = tmp_path / "bench"
    bench.mkdir()
    write_png(bench / "b.png", smooth_image(48, 64, seed=9))
    run = str(tmp_path / "run")
    assert cli.main(["train", "--examples", data, "--model", "span", "--scales", "2", "--steps", "30",
                     "--batch-size", "8", "--learning-rate", "1e-3", "--model-args", '{"width": 8, "blocks": 1}',
                     "--out", run]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 30 and math.isfinite(summary["final_loss"])
    assert cli.main(["evaluate", "--model", run, "--dataset", str(bench), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["kind"] == "span" and res["results"][0]["scale"] == 2
    assert cli.main(["train", "--examples", data, "--model", "spam", "--scales", "2", "--steps", "1",
                     "--out", str(tmp_path / "r2")]) == 2
    assert "unknown model 'spam'" in capsys.readouterr().err


def test_training_lowers_loss_and_beats_bicubic_on_its_patches(tmp_path):
    from imagesr.core.dataset import record_files
    from imagesr.training.trainer import TrainConfig, evaluate_patches, train

    data = make_dataset(str(tmp_path / "data"), n_images=4)
    cfg = TrainConfig(model="span", scales=(2,), batch_size=16, steps=150, learning_rate=1e-3,
                      model_args={"width": 8, "blocks": 1}, log_every=50, shuffle_buffer=256)
    summary = train(cfg, record_files(data, "train"), [], str(tmp_path / "run"))
    losses = [loss for _, loss in summary["loss_log"]]
    assert len(losses) == 3 and losses[-1] < losses[0], losses
    own = evaluate_patches(load_upscaler(str(tmp_path / "run")).model, cfg, record_files(data, "train"))
    assert own["eval_psnr_y"] > own["eval_psnr_y_bicubic"] + 0.1, own


def test_model_identity_is_the_saved_name_whole():
    """An architecture is recognised by its whole saved name (alone or with _x<scale>), never by
    a prefix: a VDSR saved as "spanner" is not a SPAN."""
    from imagesr.training.models import spec_of
    from imagesr.training.models.vdsr import build_vdsr

    assert spec_of(build_vdsr(depth=3, width=8)).name == "vdsr"
    assert spec_of(build_model("span", scale=2, width=8, blocks=1)).name == "span"
    with pytest.raises(ValueError, match="not an imagesr SR model"):
        spec_of(build_vdsr(depth=3, width=8, name="spanner"))
