"""A partial install (pyproject.toml's extras): a command whose extra is missing says which
extra to install, in one line, exit 2; without TensorFlow, Keras runs on JAX with no
configuration. The modules are hidden the way an absent package is (``sys.modules[name] =
None``: the import fails and ``find_spec`` finds nothing), in a child process. The real core
install on a newer Python is .ci/check_core_install.sh."""

import os
import subprocess
import sys

import pytest
from conftest import smooth_image, write_png

HIDE_THEN_RUN = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
if sys.argv[2] == "--backend":
    import imagesr.training, keras
    print(keras.backend.backend())
    sys.exit(0)
from imagesr.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run(tmp_path, hidden, *args, backend=None):
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path / "keras_home")  # no keras.json naming a backend
    if backend:
        env["KERAS_BACKEND"] = backend
    return subprocess.run([sys.executable, "-c", HIDE_THEN_RUN, ",".join(hidden), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)


def _one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("imagesr")]
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr[-2000:])
    return lines[0]


def test_patches_without_the_pipeline_extra_names_it(tmp_path):
    write_png(tmp_path / "a.png", smooth_image(64, 64))
    proc = _run(tmp_path, ["apache_beam"], "patches", "--input", str(tmp_path), "--output", str(tmp_path / "out"))
    line = _one_line(proc)
    assert "apache_beam" in line and "pip install 'imagesr[pipeline]'" in line, line
    assert not (tmp_path / "out").exists()


def test_pipeline_run_without_the_pipeline_extra_names_it(tmp_path):
    proc = _run(tmp_path, ["apache_beam", "tfx"], "pipeline", "run", "--root", str(tmp_path / "root"))
    assert "pip install 'imagesr[pipeline]'" in _one_line(proc)


def test_tensorflow_backend_without_tensorflow_names_the_tf_extra(tmp_path):
    proc = _run(tmp_path, ["tensorflow"], "evaluate", "--model", "subpixel_x2", "--dataset", str(tmp_path),
                backend="tensorflow")
    line = _one_line(proc)
    assert "tensorflow" in line and "pip install 'imagesr[tf]'" in line, line


def test_keras_takes_jax_when_tensorflow_is_absent(tmp_path):
    pytest.importorskip("jax")
    proc = _run(tmp_path, ["tensorflow"], "--backend")
    assert proc.returncode == 0 and proc.stdout.split() == ["jax"], proc.stderr[-2000:]
    proc = _run(tmp_path, [], "--backend")  # TensorFlow installed (this environment): Keras's own default
    assert proc.returncode == 0 and proc.stdout.split() == ["tensorflow"], proc.stderr[-2000:]
    proc = _run(tmp_path, ["tensorflow"], "--backend", backend="numpy")  # the user's choice stands
    assert proc.returncode == 0 and proc.stdout.split() == ["numpy"], proc.stderr[-2000:]
