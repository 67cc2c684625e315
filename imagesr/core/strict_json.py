"""JSON that every parser reads. Python's ``json`` writes ``NaN`` and ``Infinity``, which RFC 8259
does not allow (``jq``, browsers and most other languages refuse the file). A PSNR is +inf
when an upscale is exact (a flat image), so non-finite numbers are written as ``null``."""

import json
import math
import numbers


def finite(obj):
    """``obj`` with every non-finite float (NaN, +-inf), at any depth, replaced by None."""
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):  # numpy's floats too
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """:func:`json.dumps` of :func:`finite` ``obj``; refuses to write NaN or Infinity."""
    return json.dumps(finite(obj), allow_nan=False, **kwargs)
