"""The shipped models: chosen by name and by scale, listed with figures that match the files,
and better than bicubic on a real photograph at the scale they were chosen for."""

import json
import os

import numpy as np
import pytest

from imagesr import cli
from imagesr.core import shipped
from imagesr.core.media import decode_image, write_image
from imagesr.core.metrics import psnr
from imagesr.core.resize import imresize

NAMES = ("subpixel_x1.5", "subpixel_x1.5_clean", "subpixel_x2", "subpixel_x3", "subpixel_x4", "vdsr")


def _installed():
    names = {m.name for m in shipped.list_models()}
    missing = [n for n in NAMES if n not in names]
    if missing:
        pytest.skip(f"shipped models not installed: {missing}")


def test_models_command_lists_what_the_files_hold(capsys):
    _installed()
    from imagesr.training.models import architecture
    from imagesr.training.serving import load_keras_model

    assert cli.main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert set(NAMES) <= set(listed)
    for name in NAMES:
        model = load_keras_model(listed[name]["path"])
        arch = architecture(model)
        assert listed[name]["parameters"] == model.count_params(), name
        assert listed[name]["kind"] == arch["name"], name
        if arch["scale"] is not None:
            assert listed[name]["scales"] == [arch["scale"]], name
        assert set(listed[name]["figures"]) == {"Set5", "Set14"}, name
        assert os.path.isfile(os.path.join(listed[name]["path"], "MODEL_CARD.md")), name
    assert cli.main(["models"]) == 0
    assert "subpixel_x2" in capsys.readouterr().out


def test_choice_by_name_and_by_scale():
    _installed()
    assert shipped.resolve(None) == os.path.join(shipped.ASSETS, shipped.DEFAULT)
    assert shipped.resolve("vdsr") == os.path.join(shipped.ASSETS, "vdsr")
    assert shipped.resolve("bicubic") == "bicubic"
    assert shipped.for_scale(2).name == "subpixel_x2"  # the efficient model before VDSR
    assert shipped.for_scale(1.5).name == "subpixel_x1.5"  # the real-video default, not subpixel_x1.5_clean
    assert shipped.for_scale(3).name == "subpixel_x3"
    assert shipped.for_scale(4).name == "subpixel_x4"
    assert shipped.for_scale(1.25) is None
    with pytest.raises(ValueError, match="no shipped model of that name.*subpixel_x2"):
        shipped.resolve("subpixel_x7")


def test_unknown_model_name_is_one_line(tmp_path, capsys):
    img = str(tmp_path / "a.png")
    write_image(img, np.zeros((16, 16, 3), np.uint8))
    rc = cli.main(["upscale", img, "-o", str(tmp_path / "b.png"), "--model", "nosuchmodel"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nosuchmodel" in err[0] and "shipped" in err[0]
    assert sorted(os.listdir(tmp_path)) == ["a.png"]


def test_scale_2_uses_the_x2_model_and_beats_bicubic_on_a_real_photo(tmp_path, capsys):
    """`imagesr upscale --scale 2` picks subpixel_x2 by itself, and on a real photograph
    (scikit-image's coffee, never trained on) it beats `--model bicubic` through the same path."""
    _installed()
    from imagesr.core import samples

    hr = samples.photo("coffee")[:256, 100:420]  # 256x320, a multiple of 2
    lr = imresize(hr, scale=0.5)
    src = str(tmp_path / "lr.png")
    write_image(src, lr)
    scores = {}
    for label, extra in (("default", []), ("bicubic", ["--model", "bicubic"])):
        out = str(tmp_path / f"{label}.png")
        assert cli.main(["upscale", src, "-o", out, "--scale", "2", *extra]) == 0
        stdout = capsys.readouterr().out
        if label == "default":
            assert "with subpixel_x2 (subpixel" in stdout, stdout
        up = decode_image(out)
        assert up.shape == hr.shape
        scores[label] = psnr(up, hr, crop_border=2)
    print(f"coffee x2 Y-PSNR: {scores}")
    assert scores["default"] > scores["bicubic"] + 1.0, scores


@pytest.mark.parametrize("scale", [3, 4])
def test_each_standard_scale_has_its_efficient_model_and_it_beats_bicubic(tmp_path, capsys, scale):
    """`--scale 3` and `--scale 4` pick the CPU-trained efficient models, which beat bicubic
    on a real photograph through the command path."""
    _installed()
    from imagesr.core import samples

    hr = samples.photo("coffee")[:240, 100:436]  # 240x336: a multiple of 3 and of 4
    src = str(tmp_path / "lr.png")
    write_image(src, imresize(hr, scale=1 / scale))
    scores = {}
    for label, extra in (("default", []), ("bicubic", ["--model", "bicubic"])):
        out = str(tmp_path / f"{label}.png")
        assert cli.main(["upscale", src, "-o", out, "--scale", str(scale), *extra]) == 0
        if label == "default":
            assert f"with subpixel_x{scale} (subpixel" in capsys.readouterr().out
        scores[label] = psnr(decode_image(out), hr, crop_border=scale)
    assert scores["default"] > scores["bicubic"] + 0.5, scores


def test_warm_start_takes_the_architecture_of_its_model(tmp_path):
    """The demo warm-starts from the shipped model, whatever width and depth it has."""
    _installed()
    from imagesr.training.trainer import TrainConfig, build_or_load

    model = build_or_load(TrainConfig(model="subpixel", scales=(1.5,), warm_start=shipped.resolve(None)))
    assert model.count_params() == shipped.get(shipped.DEFAULT).parameters
    with pytest.raises(ValueError, match="width=8"):
        build_or_load(TrainConfig(model="subpixel", scales=(1.5,), model_args={"width": 8},
                                  warm_start=shipped.resolve(None)))
    with pytest.raises(ValueError, match="x1.5 model"):
        build_or_load(TrainConfig(model="subpixel", scales=(2,), warm_start=shipped.resolve(None)))
    with pytest.raises(ValueError, match="vdsr model"):
        build_or_load(TrainConfig(model="subpixel", scales=(2,), warm_start=shipped.resolve("vdsr")))


def test_demo_pipeline_warm_starts_from_the_shipped_default(tmp_path):
    """``make demo`` fine-tunes the shipped default: its config must pass the pipeline's own
    checks and train the architecture and scale of the model it starts from."""
    _installed()
    from imagesr.pipelines.commands import demo_config
    from imagesr.pipelines.config import check

    cfg = demo_config(str(tmp_path))
    default = shipped.get(shipped.DEFAULT)
    assert cfg.warm_start == default.path
    assert cfg.train["model"] == default.kind
    assert [float(s) for s in cfg.train["scales"]] == list(default.scales)
    assert all(os.path.exists(p) for p in cfg.inputs), cfg.inputs
    check(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_each_shipped_model_reproduces_its_card_on_set5(name):
    """Each shipped file loads under this Keras and backend and measures what its card says on
    Set5 (the files are saved by the oldest Keras the project supports and read by the newest)."""
    _installed()
    from conftest import shared_path

    from imagesr.core.evaluation import evaluate_folder
    from imagesr.training.serving import load_upscaler

    model = shipped.get(name)
    up = load_upscaler(model.path)
    card = model.figures["Set5"]
    results = evaluate_folder(shared_path("bench", "Set5", "HR"), [float(s) for s in card], up.evaluation_upscaler)
    got = {f"{r.scale:g}": round(r.psnr_y, 2) for r in results}
    want = {s: v[0] for s, v in card.items()}
    print(f"{name} Set5: card {want}, measured {got}")
    assert all(abs(got[s] - want[s]) <= 0.05 for s in want), (got, want)
