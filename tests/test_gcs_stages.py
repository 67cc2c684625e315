"""Every stage after the Beam job on gs://, against a real GCS-protocol server (no mocks of the
storage client): patch records on gs:// -> the Trainer's run_fn (a few steps) -> the model
exported to gs:// -> the evaluator reads it and writes metrics, per-image CSV and report to
gs:// -> what the Pusher takes; the validation gate reads anomalies there and fails closed."""

import json
import os

import pytest
from conftest import smooth_image, write_png

from imagesr.core import fs


@pytest.fixture(scope="module")
def bucket(gcs_emulator):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    return client.create_bucket("imagesr-stages")


def test_fs_layer_on_gcs(bucket, tmp_path):
    root = "gs://imagesr-stages/fs"
    fs.write_text(fs.join(root, "a", "x.json"), '{"k": 1}')
    fs.write_bytes(fs.join(root, "a", "b", "y.bin"), b"\x00\x01")
    assert fs.exists(root) and fs.exists(fs.join(root, "a")) and fs.isfile(fs.join(root, "a", "x.json"))
    assert not fs.exists(fs.join(root, "nope")) and not fs.isfile(fs.join(root, "a"))
    assert fs.list_files(root) == [f"{root}/a/b/y.bin", f"{root}/a/x.json"]
    assert fs.glob(f"{root}/a/*.json") == [f"{root}/a/x.json"]  # * stays within a level
    with fs.local_tree(fs.join(root, "a")) as local:
        assert sorted(os.listdir(local)) == ["b", "x.json"] and json.load(open(os.path.join(local, "x.json"))) == {"k": 1}
    with fs.staged_folder(fs.join(root, "up")) as local:
        (open(os.path.join(local, "z.txt"), "w")).write("z")
    assert fs.read_text(fs.join(root, "up", "z.txt")) == "z"
    with pytest.raises(RuntimeError):
        with fs.staged_folder(fs.join(root, "failed")) as local:
            open(os.path.join(local, "half.txt"), "w").write("x")
            raise RuntimeError("the block failed")
    assert not fs.exists(fs.join(root, "failed"))  # nothing uploaded from a failed block


def test_records_trainer_model_evaluator_on_gcs(bucket, tmp_path):
    from tfx.components.trainer.fn_args_utils import FnArgs

    from imagesr.components.tfx.evaluator_config import EvaluatorConfig
    from imagesr.components.tfx.sr_evaluator import evaluate_model
    from imagesr.core.scale import Scale
    from imagesr.pipelines import patch_job
    from imagesr.training.serving import load_upscaler
    from imagesr.training.trainer import run_fn, trainer_custom_config

    media = tmp_path / "media"
    media.mkdir()
    for i in range(4):
        write_png(media / f"p{i}.png", smooth_image(72, 96, seed=i))
    data = "gs://imagesr-stages/patches"
    patch_job.run(["--input", str(media), "--output", data, "--scales", "2", "--patch-size", "24", "--stride", "24",
                   "--workers", "1", "--no-progress", "--eval-fraction", "0.3"])
    assert fs.isfile(fs.join(data, "manifest.json")) and fs.glob(f"{data}/Split-train/*")

    model_uri = "gs://imagesr-stages/pipeline/Trainer/model/7"
    serving = fs.join(model_uri, "Format-Serving")
    fn_args = FnArgs(train_files=[f"{data}/Split-train/*"], eval_files=[f"{data}/Split-eval/*"],
                     serving_model_dir=serving, model_run_dir="gs://imagesr-stages/pipeline/Trainer/model_run/7",
                     train_steps=4, custom_config=trainer_custom_config({"model": "subpixel", "scales": [2], "batch_size": 4,
                                                                         "model_args": {"width": 8, "blocks": 1},
                                                                         "log_every": 2}))
    run_fn(fn_args)
    assert fs.isfile(fs.join(serving, "model.keras"))  # exported to gs://, what the Pusher copies
    summary = json.loads(fs.read_text("gs://imagesr-stages/pipeline/Trainer/model_run/7/train_summary.json"))
    assert summary["steps"] == 4
    assert load_upscaler(serving).scale == Scale(2)  # the Pusher's input loads from gs://

    bench = tmp_path / "bench"
    bench.mkdir()
    write_png(bench / "b.png", smooth_image(64, 80, seed=9))
    out = "gs://imagesr-stages/pipeline/SREvaluator/evaluation/8"
    metrics = evaluate_model(serving, out, EvaluatorConfig(benchmarks=[str(bench)], scales=[2], eval_split_scale=2,
                                                           timing_frames=2, timing_repeats=1, timing_input=[32, 48],
                                                           timing_output=[64, 96]), examples_uri=data)
    for name in ("metrics.json", "per_image.csv", "report.html"):
        assert fs.isfile(fs.join(out, name)), name
    stored = json.loads(fs.read_text(fs.join(out, "metrics.json")))
    assert stored["blessed"] == metrics["blessed"] and stored["models"]["candidate"]["path"] == serving
    # the eval-split frames, read from gs:// through the dataset's manifest, are measured
    assert {r["model"] for r in stored["psnr"] if r["benchmark"] == "eval-split"} == {"candidate", "bicubic"}
    assert "<html" in fs.read_text(fs.join(out, "report.html"))[:200].lower()


def test_the_gate_reads_anomalies_on_gcs_and_fails_closed(bucket):
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    from tfx.types import artifact_utils, standard_artifacts

    from imagesr.components.tfx.validation_gate import SchemaAnomalies, read_anomalies

    art = standard_artifacts.ExampleAnomalies()
    art.uri = "gs://imagesr-stages/pipeline/ExampleValidator/anomalies/5"
    art.split_names = artifact_utils.encode_split_names(["train", "eval"])
    bad = anomalies_pb2.Anomalies()
    bad.anomaly_info["scale"].short_description = "Out-of-range values"
    fs.write_bytes(fs.join(art.uri, "Split-train", "SchemaDiff.pb"), bad.SerializeToString())
    with pytest.raises(SchemaAnomalies, match=r"\[eval\] no anomalies report"):
        read_anomalies(art)  # the eval split's report is missing: not a pass
    fs.write_bytes(fs.join(art.uri, "Split-eval", "SchemaDiff.pb"), anomalies_pb2.Anomalies().SerializeToString())
    assert read_anomalies(art) == {"train": ["feature 'scale': Out-of-range values: "]}
