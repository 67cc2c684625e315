"""imagesr: live image super-resolution, from data to serving.

One namespace for every layer: ``imagesr`` (the core), ``imagesr.training``,
``imagesr.components``, ``imagesr.pipelines``, ``imagesr.schemas`` (docs/ARCHITECTURE.md).
"""
