"""Unit tests per layer for logic that the end-to-end runs reach only slowly: the Scale type,
the architecture specs, the configuration spine and its cross-stage refusals, option splitting,
the blessing decision, reading anomalies (failing closed), and ``run_fn`` with a small FnArgs."""

import json
import os

import numpy as np
import pytest

from imagesr.core.errors import UserError
from imagesr.core.scale import Scale, ScaleError

# --------------------------------------------------------------------------- core: Scale


def test_scale_is_exact_and_carries_what_stages_need():
    assert Scale(1.5) == Scale("3/2") == Scale("1.5") == 1.5 and hash(Scale(1.5)) == hash(1.5)
    assert Scale(1.3333333432674408) == Scale("4/3")  # a float32 from a record snaps to its ratio
    s = Scale(1.5)
    assert (s.modulus, s.unshuffle, s.shuffle, s.lr_side(48), s.hr_side(853)) == (3, 2, 3, 32, 1280)
    assert f"{s:g}" == "1.5" and str(Scale(4)) == "4" and str(Scale("4/3")) == "4/3"
    assert Scale(2).to_json() == 2 and isinstance(Scale(2).to_json(), int) and Scale(1.5).to_json() == 1.5
    import pickle

    assert pickle.loads(pickle.dumps(Scale("4/3"))) == Scale("4/3")
    for bad in (1, 0.5, "inf", "nan", 1.37, "x", 1.0, 101):
        with pytest.raises(ScaleError):
            Scale(bad)
    assert issubclass(ScaleError, UserError)


def test_one_output_size_rule():
    from imagesr.core.resize import output_size

    assert output_size((720, 1280), Scale(1.5)) == (1080, 1920)
    assert output_size((853, 480), Scale(1.5)) == (1280, 720)  # ceil, exactly
    assert output_size((1020, 1020), 0.5) == (510, 510)


def test_bicubic_weights_have_one_source():
    """The Keras layers' phase table is the numpy core's contributions, cast to float32."""
    from fractions import Fraction

    from imagesr.core.resize import contributions
    from imagesr.training.layers import _phase_table

    period, shift, left, weights = _phase_table(Fraction(3, 2))
    w, idx = contributions(np.arange(1, 4), 1.5)
    assert (period, shift) == (3, 2)
    np.testing.assert_array_equal(weights, w.astype(np.float32))
    np.testing.assert_array_equal(left, idx[:, 0].astype(np.int64) - 1)


# --------------------------------------------------------------------------- training: specs


def test_architecture_specs_answer_for_the_models():
    from imagesr.training.models import SPECS, architecture, build_model, multiply_adds, spec_of

    sp = build_model("subpixel", scale=1.5, width=16, blocks=2)
    vd = build_model("vdsr", depth=4, width=8)
    assert spec_of(sp) is SPECS["subpixel"] and spec_of(vd) is SPECS["vdsr"]
    assert SPECS["subpixel"].scale_of(sp) == Scale(1.5) and SPECS["vdsr"].scale_of(vd) is None
    assert SPECS["subpixel"].input_multiple(Scale(1.5)) == 2 and SPECS["vdsr"].input_multiple(None) == 1
    assert not SPECS["subpixel"].input_at_output_size and SPECS["vdsr"].input_at_output_size
    assert SPECS["vdsr"].receptive_radius(vd) == 4  # four 3x3 convolutions
    assert architecture(sp) == {"name": "subpixel", "scale": Scale(1.5),
                                "model_args": {"channels": 3, "width": 16, "blocks": 2}}
    # rebuilt from its spec's arguments: the same architecture
    again = build_model("subpixel", scale=architecture(sp)["scale"], **architecture(sp)["model_args"])
    assert again.count_params() == sp.count_params()
    # VDSR's convolutions run at the output size, the sub-pixel network's at half the input's
    assert multiply_adds(vd, (10, 10), (15, 15)) == 15 * 15 * sum(
        int(np.prod(layer.kernel.shape)) for layer in vd.layers if hasattr(layer, "kernel"))
    assert multiply_adds(sp, (10, 10), (15, 15)) == 5 * 5 * sum(
        int(np.prod(layer.kernel.shape)) for layer in sp.layers if hasattr(layer, "kernel"))


def test_shipped_files_load_through_their_specs():
    from imagesr.core import shipped
    from imagesr.training.serving import load_upscaler

    for m in shipped.list_models():
        up = load_upscaler(m.path)
        assert up.spec.name == m.kind and up.parameters == m.parameters
        if up.spec.fixed_scale:
            assert [up.scale] == [Scale(s) for s in m.scales]


# --------------------------------------------------------------------------- the configuration spine


def _config(tmp_path, **sections):
    base = {"inputs": [str(tmp_path)], "patch": {"scales": [1.5], "patch_size": 48, "stride": 24},
            "train": {"model": "subpixel", "scales": [1.5]}}
    base.update(sections)
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(base))
    return str(path)


@pytest.mark.parametrize("sections,message", [
    ({"train": {"model": "subpixel", "scales": [1.5], "stpes": 3}}, "stpes"),
    ({"patch": {"scales": [1.5], "patchsize": 48}}, "patchsize"),
    ({"evaluator": {"margin": 0.1}}, "margin"),
    ({"train": {"model": "subpixel", "scales": [2]}}, "x2 are not among the 'patch' scales x1.5"),
    ({"train": {"model": "subpixel", "scales": [1.5], "crop": 40}}, "multiple of 3"),
    ({"train": {"model": "subpixel", "scales": [1.5], "crop": 96}}, "larger than the 'patch' patch_size 48"),
    ({"evaluator": {"scales": [2, 3]}}, "do not include x1.5"),
    ({"train": {"model": "subpixel", "scales": [1.5, 2]}}, "serves one scale"),
    ({"train": {"model": "edsr", "scales": [1.5]}}, "unknown model 'edsr'"),
    ({"patch": {"scales": [1.37]}}, "not a ratio of small integers"),
    ({"inputs": []}, "no inputs"),
    ({"nme": "x"}, "unknown pipeline config keys"),
])
def test_pipeline_config_refusals(tmp_path, sections, message):
    from imagesr.pipelines.config import load_config

    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(_config(tmp_path, **sections))


def test_pipeline_config_accepts_a_consistent_one(tmp_path):
    from imagesr.pipelines.config import load_config

    cfg = load_config(_config(tmp_path, evaluator={"scales": [1.5], "margin_db": 0.1},
                              train={"model": "subpixel", "scales": [1.5], "crop": 24}))
    assert cfg.train["crop"] == 24
    vdsr = load_config(_config(tmp_path, patch={"scales": [2, 3]}, train={"model": "vdsr", "scales": [2, 3]},
                               evaluator={"scales": [4]}))  # VDSR serves any scale
    assert vdsr.train["model"] == "vdsr"
    for s in (2, 3, 4):  # any standard scale is configuration, not code (the shipped x2/x3/x4 models)
        cfg = load_config(_config(tmp_path, patch={"scales": [s]}, train={"model": "subpixel", "scales": [s]},
                                  evaluator={"scales": [s]}))
        assert cfg.train["scales"] == [s] and cfg.evaluator["scales"] == [s]


def test_option_splitting():
    from imagesr.core.patches import JOB_OPTIONS, split_options

    opts, job = split_options({"scales": [2, 1.5], "patch_size": 48, "stride": 24, "eval_fraction": 0.2})
    assert opts.scales == (2, 1.5) and job == dict(JOB_OPTIONS, eval_fraction=0.2)
    with pytest.raises(UserError, match="unknown patch options.*'stirde'"):
        split_options({"stirde": 3})
    with pytest.raises(UserError, match="multiple of 3"):
        split_options({"scales": [1.5], "patch_size": 40})


@pytest.mark.parametrize("backend_reader", ["tf_dataset", "numpy_batches"])
def test_crop_is_aligned_on_both_readers_and_refused_when_it_cannot_be(tmp_path, backend_reader):
    """At x1.5 a crop must be a multiple of 3 (LR = 2/3 of it, whole pixels): 24 gives 16x16 LR
    patches that are the top-left of the stored pairs on both readers; 40 is refused up front
    (it used to train on misaligned pairs on TensorFlow and fail on JAX)."""
    from test_training import make_dataset

    from imagesr.core.dataset import record_files
    from imagesr.core.records import decode_pair, iter_tfrecord
    from imagesr.training import data
    from imagesr.training.trainer import TrainConfig

    with pytest.raises(UserError, match="multiple of 3"):
        TrainConfig(model="subpixel", scales=(1.5,), crop=40)
    root = make_dataset(str(tmp_path / "d"), scales=(1.5,), n_images=1, size=(48, 48))
    files = record_files(root, "train")
    first = decode_pair(next(iter_tfrecord(files[0])))
    if backend_reader == "tf_dataset":
        x, y = next(iter(data.tf_dataset(files, "subpixel", 1, scales=(1.5,), crop=24, repeat=False, shuffle_buffer=0)))
        x, y = np.asarray(x), np.asarray(y)
    else:
        x, y = next(data.numpy_batches(files, "subpixel", 1, scales=(1.5,), crop=24, shuffle_buffer=0))
    assert x.shape == (1, 16, 16, 3) and y.shape == (1, 24, 24, 3)
    np.testing.assert_array_equal(x[0], first.lr[:16, :16])
    np.testing.assert_array_equal(y[0], first.hr[:24, :24])


# --------------------------------------------------------------------------- components


def test_blessing_decision():
    from imagesr.components.tfx.evaluator_config import EvaluatorConfig
    from imagesr.components.tfx.sr_evaluator import decide

    rows = [{"benchmark": "Set5", "degradation": "clean", "scale": 2.0, "model": "candidate", "psnr_y": 37.0},
            {"benchmark": "Set5", "degradation": "clean", "scale": 2.0, "model": "bicubic", "psnr_y": 33.7},
            {"benchmark": "Set5", "degradation": "clean", "scale": 2.0, "model": "baseline", "psnr_y": 37.04}]
    timing = {"candidate": {"seconds": 0.1}}
    setup = {"frames": 12, "input": [360, 640], "output": [720, 1280]}
    ok, reasons = decide(rows, timing, setup, EvaluatorConfig(margin_db=0.5, tolerance_db=0.05))
    assert ok and len(reasons) == 2 and "beats" in reasons[0] and "within" in reasons[1]
    ok, reasons = decide(rows, timing, setup, EvaluatorConfig(margin_db=0.5, tolerance_db=0.01))
    assert not ok and "worse than" in reasons[1]
    ok, reasons = decide(rows, timing, setup, EvaluatorConfig(margin_db=5.0))
    assert not ok and "does not beat" in reasons[0]
    ok, reasons = decide(rows, timing, setup, EvaluatorConfig(time_budget_s=0.05))
    assert not ok and reasons[-1] == "12 frames 640x360 -> 1280x720 in 0.100 s (over the budget 0.05 s)"
    assert decide([], timing, setup, EvaluatorConfig()) == (False, ["the candidate could not be evaluated on any benchmark"])
    # the real-video rows (a degradation other than clean) are held to their own margin
    real = [dict(r, degradation="h264-crf23+bicubic", psnr_y=r["psnr_y"] - 3) for r in rows[:2]]
    ok, reasons = decide(rows[:2] + real, timing, setup, EvaluatorConfig(margin_db=0.5, real_video_margin_db=4.0))
    assert not ok and reasons[0].startswith("Set5 x2") and "beats" in reasons[0]
    assert reasons[1].startswith("Set5 [h264-crf23+bicubic] x2") and "does not beat" in reasons[1]
    with pytest.raises(UserError, match="h264-crfx"):
        EvaluatorConfig(real_video="h264-crfx+bicubic")


def _anomalies_artifact(tmp_path, splits, diffs):
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    from tfx.types import artifact_utils, standard_artifacts

    art = standard_artifacts.ExampleAnomalies()
    art.uri = str(tmp_path / "anomalies")
    art.split_names = artifact_utils.encode_split_names(list(splits))
    for split in splits:
        d = os.path.join(art.uri, f"Split-{split}")
        os.makedirs(d, exist_ok=True)
        if split in diffs:
            a = anomalies_pb2.Anomalies()
            for feature, short in diffs[split].items():
                a.anomaly_info[feature].short_description = short
                a.anomaly_info[feature].description = f"{short} (long)"
            with open(os.path.join(d, "SchemaDiff.pb"), "wb") as f:
                f.write(a.SerializeToString())
    return art


def test_reading_anomalies_and_failing_closed(tmp_path):
    from imagesr.components.tfx.validation_gate import SchemaAnomalies, read_anomalies

    clean = _anomalies_artifact(tmp_path / "a", ["train", "eval"], {"train": {}, "eval": {}})
    assert read_anomalies(clean) == {}
    bad = _anomalies_artifact(tmp_path / "b", ["train", "eval"], {"train": {"scale": "Out-of-range values"}, "eval": {}})
    assert read_anomalies(bad) == {"train": ["feature 'scale': Out-of-range values: Out-of-range values (long)"]}
    missing = _anomalies_artifact(tmp_path / "c", ["train", "eval"], {"train": {}})
    with pytest.raises(SchemaAnomalies, match=r"\[eval\] no anomalies report"):
        read_anomalies(missing)


def test_run_fn_with_a_small_fn_args(tmp_path):
    """The TFX Trainer's entry point, called as the GenericExecutor calls it."""
    from test_training import make_dataset
    from tfx.components.trainer.fn_args_utils import FnArgs

    from imagesr.training.serving import load_upscaler
    from imagesr.training.trainer import run_fn, trainer_custom_config

    root = make_dataset(str(tmp_path / "d"), scales=(2,), n_images=2)
    fn_args = FnArgs(train_files=[os.path.join(root, "Split-train", "*")], eval_files=[os.path.join(root, "Split-eval", "*")],
                     serving_model_dir=str(tmp_path / "serving"), model_run_dir=str(tmp_path / "run"), train_steps=3,
                     custom_config=trainer_custom_config({"model": "subpixel", "scales": [2], "steps": 999, "batch_size": 4,
                                                          "model_args": {"width": 8, "blocks": 1}, "log_every": 1}))
    run_fn(fn_args)
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["steps"] == 3  # the Trainer's train_steps win over custom_config
    assert load_upscaler(str(tmp_path / "serving")).scale == Scale(2)
    fn_args.custom_config = trainer_custom_config({"model": "subpixel", "scales": [2], "stpes": 3})
    with pytest.raises(UserError, match="stpes"):
        run_fn(fn_args)
    fn_args.custom_config = {"model": "subpixel", "scales": [2]}  # options not under their key
    with pytest.raises(UserError, match="imagesr_train"):
        run_fn(fn_args)
