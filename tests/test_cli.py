import json
import subprocess
import sys

import pytest

from imagesr import cli
from imagesr.core import samples


@pytest.fixture(scope="session")
def sample_paths(tmp_path_factory):
    return samples.materialize(str(tmp_path_factory.mktemp("samples")))


def test_help_is_instant_and_lazy():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, imagesr.cli as c; c.build_parser(); print('tensorflow' in sys.modules, 'apache_beam' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "False False"


def test_samples_layout(sample_paths):
    import os

    assert len(os.listdir(sample_paths["bench"])) == 3 and len(os.listdir(sample_paths["train"])) == 4
    assert len(os.listdir(sample_paths["frames"])) == 8
    from imagesr.core.media import probe_video

    info = probe_video(sample_paths["video"])
    assert (info.width, info.height, info.frame_count) == (1280, 720, 30)
    assert samples.materialize(sample_paths["root"]) == sample_paths  # idempotent


def test_bench_bicubic_json(sample_paths, capsys):
    assert cli.main(["bench", "bicubic", "--dataset", sample_paths["bench"], "--scales", "2", "1.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == sample_paths["bench"]
    assert [r["scale"] for r in out["results"]] == [2, 1.5]
    for r in out["results"]:
        assert r["images"] == 3 and 20 < r["psnr_y"] < 45 and 0 < r["ssim_y"] < 1
    assert out["results"][1]["psnr_y"] > out["results"][0]["psnr_y"]  # x1.5 is easier than x2


def test_bench_bad_inputs(tmp_path, capsys):
    assert cli.main(["bench", "bicubic", "--dataset", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert cli.main(["bench", "bicubic", "--dataset", str(tmp_path)]) == 2
    assert "holds no images" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "bicubic", "--dataset", str(tmp_path), "--scales", "1"])
    with pytest.raises(SystemExit):
        cli.main(["bench", "bicubic", "--dataset", str(tmp_path), "--scales", "abc"])
    assert cli.main([]) == 2


def test_pipeline_config_errors(tmp_path, capsys):
    assert cli.main(["pipeline", "run", "--config", str(tmp_path / "missing.json")]) == 2
    assert "No such file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["pipeline", "run", "--config", str(bad)]) == 2
    assert "does not parse" in capsys.readouterr().err
    bad.write_text('{"inputs": ["x"], "trainer": {}}')
    assert cli.main(["pipeline", "run", "--config", str(bad)]) == 2
    assert "unknown pipeline config keys ['trainer']" in capsys.readouterr().err
    bad.write_text('{"root": "%s"}' % (tmp_path / "r"))
    assert cli.main(["pipeline", "run", "--config", str(bad)]) == 2
    assert "lists no inputs" in capsys.readouterr().err
    assert cli.main(["runs", "list", "--metadata", str(tmp_path / "none.sqlite")]) == 2
    assert "no MLMD store" in capsys.readouterr().err


def test_one_front_door_for_every_command(tmp_path, capsys):
    """`patches` is parsed by imagesr.cli like every command (flags it does not know go to Beam;
    -v anywhere; bad input one line), its defaults are the dataclasses' own."""
    from imagesr.core.patches import JobOptions, PatchOptions

    with pytest.raises(SystemExit) as e:
        cli.main(["upscale", "a.mp4", "-o", "b.mp4", "--bogus"])
    assert e.value.code == 2 and "imagesr upscale: error: unrecognized arguments: --bogus" in capsys.readouterr().err
    rc = cli.main(["patches", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"),
                   "--direct_running_mode=in_memory", "-v"])
    err = capsys.readouterr().err
    assert rc == 2 and "imagesr: error: input" in err and "does not exist" in err and "Traceback" not in err
    args, beam = cli.build_parser().parse_known_args(["patches", "--input", "x", "--output", "y", "--region", "r"])
    po, jo = PatchOptions(), JobOptions()
    assert (args.patch_size, args.stride, args.min_std, tuple(args.scales), args.degradation) == \
        (po.patch_size, po.stride, po.min_std, po.scales, po.degradation)
    assert (args.eval_fraction, args.frame_stride, args.max_megapixels) == (jo.eval_fraction, jo.frame_stride,
                                                                            po.max_megapixels)
    assert beam == ["--region", "r"]
