"""Training on the TensorFlow backend (CPU): layers, readers, a real short training run,
export (SavedModel and .keras agree), loading errors."""

import gzip
import json
import math
import os

import numpy as np
import pytest
from conftest import smooth_image, write_png

from imagesr.core.patches import PatchOptions
from imagesr.core.records import encode_features, write_tfrecord
from imagesr.core.resize import imresize
from imagesr.core.sources import Source, process_source

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from imagesr.core.dataset import DatasetError, record_files  # noqa: E402
from imagesr.training.data import numpy_batches, tf_dataset  # noqa: E402
from imagesr.training.layers import BicubicResize, bicubic_resize, bicubic_upscale_to, pixel_shuffle, pixel_unshuffle  # noqa: E402
from imagesr.training.models import build_model, model_kind, model_scale  # noqa: E402
from imagesr.training.serving import ModelLoadError, load_upscaler  # noqa: E402
from imagesr.training.trainer import TrainConfig, evaluate_patches, train  # noqa: E402


def real_crop(i, size=(96, 120)):
    """Crops of real photographs shipped with scikit-image (texture a model can learn)."""
    from imagesr.core.samples import photo

    names = ("chelsea", "coffee", "rocket", "motorcycle", "astronaut")
    img = photo(names[i % len(names)])
    y, x = 40 + 30 * (i // len(names)), 60 + 50 * (i // len(names))
    return np.ascontiguousarray(img[y : y + size[0], x : x + size[1]])


def make_dataset(root, residual=True, scales=(2,), n_images=4, size=(96, 120)):
    """Patch-pair TFRecords written with the project's own core (what the Beam job writes)."""
    opts = PatchOptions(scales=scales, patch_size=24, stride=12, residual=residual, min_std=0)
    for split, seeds in (("train", range(n_images)), ("eval", range(n_images, n_images + 2))):
        d = os.path.join(root, f"Split-{split}")
        os.makedirs(d, exist_ok=True)
        with gzip.open(os.path.join(d, "data_tfrecord-00000-of-00001.gz"), "wb") as f:
            for s in seeds:
                p = write_png(os.path.join(root, f"img{s}.png"), real_crop(s, size))
                out = process_source(Source("image", "t", f"t/{s}", f"t/{s}", (p,), split=split), opts)
                for r in out.records:
                    write_tfrecord(f, r)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(str(tmp_path_factory.mktemp("patches")))


# --------------------------------------------------------------------------- layers


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_layer_equals_core_for_integer_scales(scale, rng):
    img = rng.integers(0, 256, (21, 17, 3), dtype=np.uint8)
    got = np.asarray(BicubicResize(scale)(np.float32(img[None])))[0]
    np.testing.assert_array_equal(got, imresize(img, scale))


def test_bicubic_layer_x15_and_dynamic_sizes(rng):
    img = rng.integers(0, 256, (72, 128, 3), dtype=np.uint8)
    ref = imresize(img, size=(108, 192))
    for got in (np.asarray(bicubic_resize(np.float32(img[None]), scale=1.5))[0],
                np.asarray(bicubic_upscale_to(tf.constant(np.float32(img[None])), 108, 192))[0]):
        diff = np.abs(got - ref)
        # x1.5 on noise hits exact .5 ties often; float32 implementations (the numpy core included,
        # which differs from a float64 MATLAB emulation on 0.16% of these values) flip some of them.
        assert diff.max() <= 2 and (diff > 0).mean() < 5e-3


def test_pixel_shuffle_roundtrip(rng):
    x = rng.random((2, 6, 8, 12)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(pixel_unshuffle(pixel_shuffle(x, 2), 2)), x)


def test_models_shapes_and_params():
    v = build_model("vdsr")
    assert 660_000 < v.count_params() < 670_000 and model_kind(v) == "vdsr" and model_scale(v) is None
    for s, shape in ((2, (1, 48, 64, 3)), (1.5, (1, 36, 48, 3)), (3, (1, 72, 96, 3))):
        m = build_model("subpixel", scale=s)
        assert m(np.zeros((1, 24, 32, 3), np.float32)).shape == shape
        assert m.count_params() < v.count_params() / 3 and model_scale(m) == s
    # untrained models are exactly bicubic (zero-initialised last layer)
    img = smooth_image(24, 32)
    np.testing.assert_array_equal(np.asarray(build_model("subpixel", scale=2)(np.float32(img[None])))[0], imresize(img, 2))


# --------------------------------------------------------------------------- readers


@pytest.mark.parametrize("kind,residual", [("vdsr", True), ("vdsr", False), ("subpixel", True)])
def test_tf_free_reader_equals_tf_data(tmp_path, kind, residual):
    root = make_dataset(str(tmp_path), residual=residual, scales=(2, 3), n_images=2)
    files = record_files(root, "train")
    scales = (2, 3) if kind == "vdsr" else (3,)
    a = list(numpy_batches(files, kind, 7, scales=scales))
    b = [(x.numpy(), y.numpy()) for x, y in tf_dataset(files, kind, 7, scales=scales)]
    assert len(a) == len(b) > 2
    for (x1, y1), (x2, y2) in zip(a, b):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_vdsr_input_is_exact_bicubic(dataset):
    files = record_files(dataset, "train")
    x, y = next(numpy_batches(files, "vdsr", 4, scales=(2,)))
    lr = np.stack([imresize(h.astype(np.uint8), size=(12, 12)) for h in y])  # records' LR is the frame's bicubic, so compare sizes only
    assert x.shape == y.shape and lr.shape == (4, 12, 12, 3)


def test_examples_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such examples folder"):
        record_files(str(tmp_path / "missing"), "train")
    (tmp_path / "empty" / "Split-train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no TFRecord files"):
        record_files(str(tmp_path / "empty"), "train")
    other = tmp_path / "other" / "Split-train"
    other.mkdir(parents=True)
    with gzip.open(other / "data.gz", "wb") as f:
        write_tfrecord(f, encode_features({"image": b"xx", "label": 3}))
    cfg = TrainConfig(model="vdsr", scales=(2,), steps=1, batch_size=2)
    with pytest.raises(DatasetError, match="lacks required feature"):
        train(cfg, record_files(str(tmp_path / "other"), "train"), [], str(tmp_path / "run"))
    (other / "data.gz").write_bytes(b"not a tfrecord at all, just text")
    with pytest.raises(DatasetError):
        train(cfg, record_files(str(tmp_path / "other"), "train"), [], str(tmp_path / "run"))


# --------------------------------------------------------------------------- training + export


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run"))
    cfg = TrainConfig(model="vdsr", scales=(2,), batch_size=16, steps=150, learning_rate=1e-3,
                      model_args={"depth": 4, "width": 16}, log_every=50, shuffle_buffer=256)
    summary = train(cfg, record_files(dataset, "train"), record_files(dataset, "eval"), out)
    return cfg, out, summary


def test_training_lowers_loss_and_beats_bicubic_on_its_patches(trained, dataset):
    cfg, out, summary = trained
    losses = [loss for _, loss in summary["loss_log"]]
    assert len(losses) == 3 and losses[-1] < losses[0]
    model = load_upscaler(out).model
    own = evaluate_patches(model, cfg, record_files(dataset, "train"))
    assert own["eval_psnr_y"] > own["eval_psnr_y_bicubic"] + 0.1, own
    assert os.path.isdir(os.path.join(out, "logs")) and summary["backend"] == "tensorflow"
    assert json.load(open(os.path.join(out, "train_summary.json")))["steps"] == 150


def test_saved_model_signature_equals_keras_file(trained, rng):
    _, out, _ = trained
    frames = rng.integers(0, 256, (3, 20, 28, 3), dtype=np.uint8)
    sm = tf.saved_model.load(os.path.join(out, "saved_model"))
    got = sm.signatures["serve"](frames=tf.constant(frames), size=tf.constant([40, 56], tf.int32))["frames"].numpy()
    want = load_upscaler(out)(frames, (40, 56))
    assert got.dtype == np.uint8 and got.shape == want.shape == (3, 40, 56, 3)
    assert np.abs(got.astype(int) - want).max() <= 1 and (got != want).mean() < 1e-3
    k = keras.saving.load_model(os.path.join(out, "model.keras"), compile=False)
    assert k.count_params() == load_upscaler(out).parameters


def test_warmup_cosine_schedule():
    from imagesr.training.schedules import WarmupCosine

    s = WarmupCosine(1e-3, warmup=10, decay=100, alpha=0.01)
    lr = [float(keras.ops.convert_to_numpy(s(i))) for i in (0, 5, 10, 60, 110, 500)]
    assert lr[0] == 0 and abs(lr[1] - 5e-4) < 1e-9 and abs(lr[2] - 1e-3) < 1e-9
    assert abs(lr[3] - (1e-5 + 0.99e-3 * 0.5)) < 1e-8 and abs(lr[4] - 1e-5) < 1e-9 and abs(lr[5] - 1e-5) < 1e-9
    assert WarmupCosine(**s.get_config()).get_config() == s.get_config()


def test_parallel_load_and_prefetch_give_the_same_data(tmp_path):
    import itertools

    from imagesr.training.data import array_batches, load_arrays

    root = make_dataset(str(tmp_path / "a"), n_images=2)
    extra = os.path.join(root, "Split-train", "data_tfrecord-00000-of-00001.gz")
    files = [extra, extra]  # two files: two workers
    x1, y1 = load_arrays(files, "vdsr", (2,))
    x2, y2 = load_arrays(files, "vdsr", (2,), workers=2)
    assert x1.dtype == np.uint8 and len(x1) > 8 and np.array_equal(x1, x2) and np.array_equal(y1, y2)
    plain = list(itertools.islice(array_batches(x1, y1, 4, seed=3), 20))
    it = array_batches(x1, y1, 4, seed=3, prefetch=3)
    ahead = list(itertools.islice(it, 20))
    it.close()
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(plain, ahead))


def test_parallel_load_of_a_corrupt_file_is_a_clear_error(tmp_path):
    from imagesr.training.data import load_arrays

    root = make_dataset(str(tmp_path / "a"), n_images=2)
    good = os.path.join(root, "Split-train", "data_tfrecord-00000-of-00001.gz")
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00" * 40))  # a record header whose CRC does not match
    with pytest.raises(DatasetError, match="bad.gz: cannot read records: "):
        load_arrays([good, str(bad)], "vdsr", (2,), workers=2)


def test_time_budget_sizes_the_cosine(dataset, tmp_path):
    cfg = TrainConfig(model="subpixel", scales=(2,), batch_size=8, steps=10**6, learning_rate=1e-3,
                      model_args={"width": 8, "blocks": 1}, log_every=10**5, time_budget_s=5, in_memory=True)
    s = train(cfg, record_files(dataset, "train"), [], str(tmp_path))
    assert 0 < s["steps"] < 10**6 and s["final_learning_rate"] < 0.1 * 1e-3, s


def test_time_budget_rate_depends_on_the_clock_not_on_a_prediction():
    """The rate of a time-budget run is set before every step from the fraction of the budget
    used, so the steps at the end of the budget run annealed whatever the speed was before
    (a per-epoch rate predicted from the last epoch's speed stopped a run on a loaded machine
    at 3.1e-4 of a 1e-3 peak)."""
    from imagesr.training.trainer import budget_learning_rate

    rates = [budget_learning_rate(1e-3, f / 100, 10**4, 1000) for f in range(101)]
    assert rates[5] == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 0.05))))
    assert all(a >= b for a, b in zip(rates[5:], rates[6:]))  # down from the peak, monotone
    assert max(rates[95:]) < 0.01 * 1e-3 + 0.99 * 1e-3 * 0.01 and rates[100] == pytest.approx(1e-5)
    assert budget_learning_rate(1e-3, 1.7, 10**4, 1000) == rates[100]  # past the budget: the end rate
    assert budget_learning_rate(1e-3, 0.0, 100, 1000) == pytest.approx(1e-4)  # warming up by steps
    assert budget_learning_rate(1e-3, 0.05, 1, 1000) == rates[5]  # or by time, if sooner


def test_zero_steps_is_still_a_model(dataset, tmp_path):
    cfg = TrainConfig(model="subpixel", scales=(2,), steps=0, batch_size=8, model_args={"width": 8, "blocks": 1})
    s = train(cfg, record_files(dataset, "train"), record_files(dataset, "eval"), str(tmp_path))
    assert abs(s["eval_psnr_y"] - s["eval_psnr_y_bicubic"]) < 1e-6  # untrained = bicubic


def test_model_loading_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no such model"):
        load_upscaler(str(tmp_path / "nope"))
    (tmp_path / "bad.keras").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="corrupt or not a Keras file"):
        load_upscaler(str(tmp_path / "bad.keras"))
    inp = keras.Input((4,))
    keras.Model(inp, keras.layers.Dense(1)(inp), name="classifier").save(tmp_path / "other.keras")
    with pytest.raises(ModelLoadError, match="not an imagesr SR model"):
        load_upscaler(str(tmp_path / "other.keras"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(ModelLoadError, match="not a model"):
        load_upscaler(str(tmp_path / "dir"))
    assert load_upscaler("bicubic").parameters == 0


def test_cli_train_and_evaluate(dataset, tmp_path, capsys):
    from imagesr import cli

    bench = tmp_path / "bench"
    bench.mkdir()
    for i in range(2):
        write_png(bench / f"b{i}.png", smooth_image(48, 64, seed=50 + i))
    rc = cli.main(["train", "--examples", dataset, "--model", "subpixel", "--scales", "2", "--steps", "30",
                   "--batch-size", "8", "--model-args", '{"width": 8, "blocks": 1}', "--out", str(tmp_path / "run")])
    assert rc == 0
    capsys.readouterr()
    assert cli.main(["evaluate", "--model", str(tmp_path / "run"), "--dataset", str(bench), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["kind"] == "subpixel" and res["results"][0]["scale"] == 2 and res["results"][0]["images"] == 2
    assert cli.main(["evaluate", "--model", str(tmp_path / "run"), "--dataset", str(bench), "--scales", "3"]) == 2
    assert "x2 model" in capsys.readouterr().err
    assert cli.main(["train", "--examples", str(tmp_path / "none"), "--steps", "1", "--out", str(tmp_path / "r2")]) == 2
    assert "no such examples folder" in capsys.readouterr().err
