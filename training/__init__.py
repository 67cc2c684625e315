"""Keras 3 model code: architectures, layers, losses, input pipelines, training, export and
loading. Every import of Keras in imagesr goes through this package, so the backend default
below applies before Keras reads it.

Keras picks its backend once, at its first import: ``KERAS_BACKEND``, else ``~/.keras/keras.json``
(which Keras itself writes, naming TensorFlow, the first time it runs), else TensorFlow. A
user's choice of an installed backend stands; without one, imagesr takes TensorFlow when it is
installed (the pipeline and ``tf`` extras) and JAX otherwise (the core install, a GPU box), so
``pip install imagesr`` runs models with no configuration."""

import importlib.util as _util
import json as _json
import os as _os

_MODULE_OF_BACKEND = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy",
                      "openvino": "openvino"}


def _configured_backend_is_installed() -> bool:
    home = _os.environ.get("KERAS_HOME") or _os.path.join(_os.path.expanduser("~"), ".keras")
    try:
        with open(_os.path.join(home, "keras.json")) as f:
            module = _MODULE_OF_BACKEND.get(_json.load(f).get("backend"))
    except (OSError, ValueError, AttributeError):
        return False
    return module is not None and _util.find_spec(module) is not None


if ("KERAS_BACKEND" not in _os.environ and _util.find_spec("tensorflow") is None
        and _util.find_spec("jax") is not None and not _configured_backend_is_installed()):
    _os.environ["KERAS_BACKEND"] = "jax"
