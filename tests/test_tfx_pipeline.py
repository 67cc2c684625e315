"""The TFX pipeline end to end on tiny data: LocalDagRunner, sqlite MLMD, DirectRunner.

Run 1 trains a small model that beats bicubic: blessed and pushed. Run 2 trains zero steps
(an untrained model is exactly bicubic, so it cannot beat it by the margin): not blessed,
not pushed, and the baseline resolved from run 1 shows up in its evaluation. A third
pipeline with a stricter schema stops at the validation gate before training. The Vertex
pipeline JSON compiles offline."""

import json
import os
import shutil

import pytest

pytestmark = pytest.mark.slow

tfx = pytest.importorskip("tfx")

from imagesr import cli  # noqa: E402
from imagesr.core import samples  # noqa: E402
from imagesr.pipelines import local_runner, runs  # noqa: E402
from imagesr.pipelines.tfx_pipeline import SCHEMA_DIR, load_config  # noqa: E402


def tiny_config(root, sample_paths, steps=60, schema_dir=SCHEMA_DIR):
    return load_config(
        root=str(root),
        inputs=[sample_paths["train"]],
        patch={"scales": [2], "patch_size": 24, "stride": 24, "residual": True, "eval_fraction": 0.3},
        train={"model": "subpixel", "scales": [2], "steps": steps, "batch_size": 16, "learning_rate": 0.002,
               "model_args": {"width": 16, "blocks": 1}, "log_every": 20},
        evaluator={"benchmarks": [sample_paths["bench"]], "scales": [2], "timing_frames": 3, "timing_repeats": 1,
                   "margin_db": 0.02},
        schema_dir=schema_dir,
    )


@pytest.fixture(scope="module")
def sample_paths(tmp_path_factory):
    return samples.materialize(str(tmp_path_factory.mktemp("samples")))


@pytest.fixture(scope="module")
def two_runs(sample_paths, tmp_path_factory):
    root = tmp_path_factory.mktemp("tfx")
    first = local_runner.run(tiny_config(root, sample_paths, steps=80))
    second = local_runner.run(tiny_config(root, sample_paths, steps=0))
    return root, first, second


def test_first_run_is_blessed_and_pushed(two_runs):
    root, first, _ = two_runs
    assert first["state"] == "COMPLETE", first.get("error")
    assert first["blessed"] is True and first["pushed"] is True
    pushed = first["pushed_model"]
    assert os.path.isfile(os.path.join(pushed, "model.keras")) and os.path.isdir(os.path.join(pushed, "saved_model"))
    comps = first["components"]
    examples = comps["PatchExampleGen"]["outputs"]["examples"]
    for split in ("train", "eval"):
        assert os.listdir(os.path.join(examples["uri"], f"Split-{split}"))
    assert examples["properties"]["pairs"] == examples["properties"]["pairs_train"] + examples["properties"]["pairs_eval"] > 0
    assert os.path.exists(os.path.join(examples["uri"], "manifest.json"))
    assert os.listdir(comps["StatisticsGen"]["outputs"]["statistics"]["uri"])
    assert os.path.exists(os.path.join(comps["ImportSchemaGen"]["outputs"]["schema"]["uri"], "schema.pbtxt"))
    model_uri = comps["Trainer"]["outputs"]["model"]["uri"]
    assert os.path.exists(os.path.join(model_uri, "Format-Serving", "model.keras"))
    ev = comps["SREvaluator"]["outputs"]["evaluation"]["uri"]
    for f in ("metrics.json", "per_image.csv", "report.html"):
        assert os.path.exists(os.path.join(ev, f)), f
    metrics = json.load(open(os.path.join(ev, "metrics.json")))
    cand = {(r["benchmark"], r["degradation"], r["scale"]): r["psnr_y"] for r in metrics["psnr"] if r["model"] == "candidate"}
    bic = {(r["benchmark"], r["degradation"], r["scale"]): r["psnr_y"] for r in metrics["psnr"] if r["model"] == "bicubic"}
    assert {d for _, d, _ in cand} == {"clean", "h264-crf23+bicubic"}  # the real-video rows beside the clean ones
    assert all(cand[k] > bic[k] for k in cand if k[1] == "clean")
    assert metrics["timing"]["candidate"]["frames"] == 3 and metrics["models"]["candidate"]["parameters"] > 0
    assert "baseline" not in metrics["models"]  # nothing blessed before run 1
    html = open(os.path.join(ev, "report.html")).read()
    assert "BLESSED" in html and "<svg" in html and "data:image/png;base64" in html


def test_second_run_is_not_blessed_nor_pushed(two_runs):
    _, first, second = two_runs
    assert second["state"] == "COMPLETE", second.get("error")
    assert second["blessed"] is False and second["pushed"] is False and second["pushed_model"] is None
    m = second["metrics"]
    assert "baseline" in m["parameters"]  # run 1's blessed model was resolved as the baseline
    assert any("does not beat" in r for r in m["reasons"])


def test_runs_list_and_show_report_both(two_runs, capsys):
    root, first, second = two_runs
    md = os.path.join(str(root), "metadata.sqlite")
    listed = runs.list_runs(md)
    assert [r["run_id"] for r in listed] == [first["run_id"], second["run_id"]]
    assert [(r["blessed"], r["pushed"]) for r in listed] == [(True, True), (False, False)]
    assert cli.main(["runs", "list", "--metadata", md, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in out] == ["COMPLETE", "COMPLETE"]
    assert cli.main(["runs", "show", first["run_id"], "--metadata", md]) == 0
    text = capsys.readouterr().out
    assert "blessed: True" in text and first["pushed_model"] in text and "SREvaluator" in text
    assert cli.main(["report", "latest", "--metadata", md]) == 0
    assert capsys.readouterr().out.strip() == second["report"]
    assert cli.main(["runs", "show", "no-such-run", "--metadata", md]) == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_runs_need_only_where_the_runs_are(two_runs, tmp_path, monkeypatch, capsys):
    """--root alone, a config without inputs, and no arguments at all (the default stores of
    `pipeline run` and `demo`) list, show and report runs."""
    root, first, second = two_runs
    assert cli.main(["runs", "list", "--root", str(root), "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [first["run_id"], second["run_id"]]
    config = tmp_path / "where.json"
    config.write_text(json.dumps({"root": str(root)}))  # no inputs: a run could not start from it, a listing can
    assert cli.main(["runs", "show", "latest", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == second["run_id"]

    monkeypatch.setenv("IMAGESR_CACHE", str(tmp_path / "cache"))
    assert cli.main(["runs", "list"]) == 2
    assert "no pipeline runs yet" in capsys.readouterr().err
    demo_root = tmp_path / "cache" / "demo" / "tfx"  # where `imagesr demo` keeps its runs
    demo_root.mkdir(parents=True)
    shutil.copy(os.path.join(str(root), "metadata.sqlite"), demo_root / "metadata.sqlite")
    assert cli.main(["runs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:4] == [first["run_id"], "COMPLETE", "True", "True"]
    assert cli.main(["report", "latest"]) == 0
    assert capsys.readouterr().out.strip() == second["report"]
    default_root = tmp_path / "cache" / "tfx"  # `pipeline run`'s: both stores are read
    default_root.mkdir()
    shutil.copy(os.path.join(str(root), "metadata.sqlite"), default_root / "metadata.sqlite")
    assert cli.main(["runs", "list", "--json"]) == 0
    assert {r["store"] for r in json.loads(capsys.readouterr().out)} == {
        str(default_root / "metadata.sqlite"), str(demo_root / "metadata.sqlite")}


def test_retrain_warm_starts_from_the_latest_pushed_model(two_runs, sample_paths, tmp_path, capsys):
    root, first, _ = two_runs
    cfg = tiny_config(root, sample_paths, steps=10).to_json()
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    rc = cli.main(["retrain", "--config", str(path)])
    out = capsys.readouterr().out
    assert f"warm start from {first['pushed_model']}" in out
    latest = runs.show(os.path.join(str(root), "metadata.sqlite"), "latest")
    assert latest["state"] == "COMPLETE" and rc == 0
    run_dir = latest["components"]["Trainer"]["outputs"]["model_run"]["uri"]
    summary = json.load(open(os.path.join(run_dir, "train_summary.json")))
    assert summary["config"]["warm_start"] == first["pushed_model"]


def test_records_that_break_the_schema_stop_before_training(sample_paths, tmp_path):
    strict = tmp_path / "schema"
    strict.mkdir()
    text = open(os.path.join(SCHEMA_DIR, "schema.pbtxt")).read()
    # claim HR patches are at most 16 px high: the 24 px records now break the contract
    text = text.replace('name: "hr_height"\n  type: INT\n  value_count {\n    min: 1\n    max: 1\n  }\n  presence {\n    min_fraction: 1.0\n    min_count: 1\n  }\n  int_domain {\n    min: 2\n    max: 8192',
                        'name: "hr_height"\n  type: INT\n  value_count {\n    min: 1\n    max: 1\n  }\n  presence {\n    min_fraction: 1.0\n    min_count: 1\n  }\n  int_domain {\n    min: 2\n    max: 16')
    assert "max: 16\n" in text
    (strict / "schema.pbtxt").write_text(text)
    result = local_runner.run(tiny_config(tmp_path / "tfx", sample_paths, steps=5, schema_dir=str(strict)))
    assert result["state"] == "FAILED" and result["failed_components"] == ["ValidationGate"]
    assert result["components"]["Trainer"]["state"] == "NOT_RUN"
    assert "hr_height" in result["error"] and "schema" in result["error"]
    anomalies = result["components"]["ExampleValidator"]["outputs"]["anomalies"]["uri"]
    assert os.path.isdir(anomalies)


def test_a_model_trained_elsewhere_enters_with_its_provenance(sample_paths, tmp_path, capsys):
    """`imagesr pipeline run --import-model`: ModelImporter (a copy in the pipeline root, with
    the card's provenance) -> evaluator -> Pusher; blessed and pushed like a trained model, and
    `runs show --json` tells where it came from."""
    from imagesr.core import shipped

    model = shipped.get("subpixel_x2")
    if model is None:
        pytest.skip("the shipped subpixel_x2 model is not installed")
    cfg = tiny_config(tmp_path / "root", sample_paths).to_json()
    cfg["evaluator"].update(timing_frames=2, timing_input=[90, 160], timing_output=[180, 320])
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    rc = cli.main(["pipeline", "run", "--config", str(path), "--import-model", model.path])
    out = capsys.readouterr().out
    assert rc == 0, out
    md = str(tmp_path / "root" / "metadata.sqlite")
    assert cli.main(["runs", "show", "latest", "--json", "--metadata", md]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["state"] == "COMPLETE" and run["blessed"] is True and run["pushed"] is True
    assert list(run["components"]) == ["ModelImporter", "latest_blessed_model_resolver", "SREvaluator", "Pusher"]
    prov = run["imported_model"]
    assert prov["imported_from"] == model.path and prov["commit"] == "276cf5a" and "H200" in prov["device"]
    assert prov["steps"] == "27008" and prov["kind"] == "subpixel" and len(prov["sha256"]) == 64
    assert os.path.isfile(os.path.join(run["pushed_model"], "model.keras"))
    assert cli.main(["pipeline", "run", "--config", str(path), "--import-model", str(tmp_path / "nope")]) == 2
    assert "--import-model" in capsys.readouterr().err


def _param(task: dict, name: str):
    """A component parameter of a compiled task, as data (its JSON string decoded)."""
    return json.loads(task["inputs"]["parameters"][name]["runtimeValue"]["constantValue"]["stringValue"])


def test_vertex_pipeline_compiles_offline(tmp_path, capsys):
    from imagesr.pipelines.vertex_runner import CloudConfig, compile_pipeline

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = load_config(os.path.join(root, "infra", "vertex", "pipeline.json"))
    cloud = CloudConfig.load(os.path.join(root, "infra", "vertex", "cloud.json"))
    path = compile_pipeline(cfg, cloud, str(tmp_path / "vertex.json"))
    spec = json.load(open(path))["pipelineSpec"]
    executors, tasks = spec["deploymentSpec"]["executors"], spec["root"]["dag"]["tasks"]
    assert {"PatchExampleGen_executor", "StatisticsGen_executor", "Trainer_executor", "SREvaluator_executor",
            "Pusher_executor", "ValidationGate_executor"} <= set(executors)
    # the Trainer runs as a Vertex training job on the GPU machine, in the CUDA trainer image
    custom = _param(tasks["Trainer"], "custom_config")
    pool = custom["ai_platform_training_args"]["worker_pool_specs"][0]
    assert pool["machine_spec"] == {"machine_type": "a2-highgpu-1g", "accelerator_type": "NVIDIA_TESLA_A100",
                                    "accelerator_count": 1}
    assert pool["container_spec"]["image_uri"] == cloud.trainer_image
    assert custom["ai_platform_enable_vertex"] is True and custom["imagesr_train"]["model"] == "subpixel"
    # the Beam components on Dataflow, with the worker image
    for comp in ("PatchExampleGen", "StatisticsGen"):
        container = executors[f"{comp}_executor"]["container"]
        args = container["args"]
        beam = args[args.index("--json_serialized_invocation_args") + 2:]  # the executor's Beam arguments
        assert beam == cloud.dataflow_args(), (comp, beam)
        assert "--runner=DataflowRunner" in beam and f"--sdk_container_image={cloud.worker_image}" in beam
        assert container["image"] == cloud.worker_image
    trainer_args = executors["Trainer_executor"]["container"]["args"]
    assert not any(a.startswith("--runner") for a in trainer_args)  # the Trainer is not a Beam job
    assert executors["Trainer_executor"]["container"]["image"] == cloud.worker_image  # the launcher of the Vertex job
    # no cloud config: refused, nothing written (no placeholder project in a compiled pipeline)
    assert cli.main(["pipeline", "compile-vertex", "--config", os.path.join(root, "infra", "vertex", "pipeline.json"),
                     "--out", str(tmp_path / "none.json")]) == 2
    assert "needs --cloud" in capsys.readouterr().err and not (tmp_path / "none.json").exists()


def test_vertex_trainer_runs_with_the_compiled_exec_properties(tmp_path):
    """What the Vertex training container runs: TFX's Trainer GenericExecutor with the Trainer
    task's exec properties exactly as the compiled pipeline JSON carries them (the launcher's
    ai_platform_* keys in custom_config included), on real patch records."""
    from test_training import make_dataset
    from tfx.components.trainer.executor import GenericExecutor
    from tfx.types import artifact_utils, standard_artifacts

    from imagesr.pipelines.vertex_runner import CloudConfig, compile_pipeline
    from imagesr.training.serving import load_upscaler

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cfg = load_config(os.path.join(root, "infra", "vertex", "pipeline.json"),
                      train={"model": "subpixel", "scales": [2], "steps": 3, "batch_size": 4,
                             "model_args": {"width": 8, "blocks": 1}, "log_every": 1},
                      evaluator={"scales": [2]})
    cloud = CloudConfig.load(os.path.join(root, "infra", "vertex", "cloud.json"))
    spec = json.load(open(compile_pipeline(cfg, cloud, str(tmp_path / "vertex.json"))))["pipelineSpec"]
    params = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
    exec_properties = {k: v["runtimeValue"]["constantValue"]["stringValue"] for k, v in params.items()}
    assert "ai_platform_training_args" in json.loads(exec_properties["custom_config"])  # what the launcher reads

    examples = standard_artifacts.Examples()
    examples.uri = make_dataset(str(tmp_path / "examples"), scales=(2,), n_images=2)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")
    GenericExecutor().Do({"examples": [examples]}, {"model": [model], "model_run": [model_run]}, exec_properties)
    summary = json.loads((tmp_path / "model_run" / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["config"]["model"] == "subpixel"
    assert load_upscaler(str(tmp_path / "model" / "Format-Serving")).parameters == summary["parameters"]


def _cli_process(*argv):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.Popen([sys.executable, "-m", "imagesr.cli", *map(str, argv)], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _sha256(path):
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_two_runs_on_one_root_at_once_each_push_their_own_model(sample_paths, tmp_path):
    """Two `pipeline run --import-model` started at once on one root (an x2 and an x3 model):
    a second run is refused with one line while the first holds the root (and succeeds once it
    is free); each command reports its own run; every push lands in a folder of its own, never
    one that exists (folders for the next half hour's seconds are taken beforehand, as another
    pipeline pushing there would), holding exactly the model its run imported."""
    import re
    import time

    from imagesr.core import shipped

    models = [shipped.get("subpixel_x2"), shipped.get("subpixel_x3")]
    if None in models:
        pytest.skip("the shipped subpixel_x2 / subpixel_x3 models are not installed")
    # only what an import run uses (issue 24, item 14): no inputs, and the default patch and train
    # sections (x1.5) would be refused beside these evaluator scales by a run that trains
    cfg = {"root": str(tmp_path / "root"),
           "evaluator": {"benchmarks": [sample_paths["bench"]], "scales": [2, 3], "real_video": None,
                         "margin_db": 0.02, "timing_frames": 2, "timing_repeats": 1, "timing_input": [90, 160],
                         "timing_output": [180, 320]}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    serving = tmp_path / "root" / "serving"
    now = int(time.time())
    taken = {str(t) for t in range(now - 5, now + 1800)}
    for t in taken:
        (serving / t).mkdir(parents=True)
        (serving / t / "taken").write_text(t)
    commands = {m.path: _cli_process("pipeline", "run", "--config", path, "--import-model", m.path) for m in models}
    outcome = {m: p.communicate(timeout=1200) + (p.returncode,) for m, p in commands.items()}
    assert any(rc == 0 for _, _, rc in outcome.values()), outcome
    for model, (out, err, rc) in list(outcome.items()):
        if rc != 0:  # refused while the other run held the root: one line, no run of its own
            assert rc == 2, err
            lines = [ln for ln in err.splitlines() if ln.startswith("imagesr: error:")]
            assert len(lines) == 1 and "another imagesr pipeline run" in lines[0] and "Traceback" not in err, err
            p = _cli_process("pipeline", "run", "--config", path, "--import-model", model)
            outcome[model] = p.communicate(timeout=1200) + (p.returncode,)
            assert p.returncode == 0, outcome[model]
    md = str(tmp_path / "root" / "metadata.sqlite")
    made = {r["run_id"]: runs.show(md, r["run_id"]) for r in runs.list_runs(md)}
    assert len(made) == 2, sorted(made)
    pushed = set()
    for model, (out, err, rc) in outcome.items():
        reported = re.search(r"^run (\S+) \(", out, re.M).group(1)
        run = made[reported]  # the run this command reports is the one that imported its model
        assert run["state"] == "COMPLETE" and run["imported_model"]["imported_from"] == model, (model, run)
        assert f"pushed model: {run['pushed_model']}" in out
        folder = run["pushed_model"]
        assert os.path.basename(folder) not in taken and folder not in pushed
        pushed.add(folder)
        assert _sha256(os.path.join(folder, "model.keras")) == run["imported_model"]["sha256"] == \
            _sha256(os.path.join(model, "model.keras"))
    assert all(os.listdir(serving / t) == ["taken"] for t in taken)  # nobody else's folder touched
