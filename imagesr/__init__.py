"""imagesr: live image super-resolution, from data to serving.

Installed, the layers are one namespace: ``imagesr`` (the core), ``imagesr.training``,
``imagesr.components``, ``imagesr.pipelines``, ``imagesr.schemas`` (pyproject.toml maps the
repository's top-level folders there). Run from a source checkout without installing (as the
GPU scripts do with ``PYTHONPATH=.``), the same names resolve to those folders: the checkout's
root joins this package's search path, so ``imagesr.training`` is ``<checkout>/training``.
"""

import os as _os

_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "pyproject.toml")) and _os.path.isfile(
        _os.path.join(_checkout, "training", "__init__.py")):
    __path__.append(_checkout)  # noqa: F821 - a package's own __path__
