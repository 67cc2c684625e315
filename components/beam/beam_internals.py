"""The two places imagesr reaches into Apache Beam's private internals, in one module, each
with a version guard (applied only on the Beam versions they were written and tested for; on
any other, Beam's own behaviour stays and one log line says so) and a test
(tests/test_patch_job.py).

* :func:`use_gzip_level`: Beam compresses TFRecords at zlib's default level 6 and has no option
  for the level; the patch records are written at level 1 instead, which costs a fraction of
  the time for files about 10% larger (the residuals deflate slowly at 6; BENCHMARKS.md,
  ``benchmarks/residual_cost.py``). Reading is unchanged.
* :func:`use_fast_crc32c`: Beam's TFRecord sink falls back to crcmod (about 20 us per 8 KB
  record) when the old python-snappy is absent; google-crc32c (a google-cloud-storage
  dependency) computes the same checksum about 40x faster.

Both are set in the worker processes that write (the DoFn's ``setup``: the writes are fused
with it) and are idempotent.
"""

from __future__ import annotations

import logging

import apache_beam

log = logging.getLogger(__name__)

GZIP_LEVEL = 1  # the records' gzip level
TESTED_BEAM = ("2.59.0",)  # the versions whose CompressedFile and tfrecordio these patches were written for
_warned = set()


def _guard(what: str) -> bool:
    if apache_beam.__version__ in TESTED_BEAM:
        return True
    if what not in _warned:
        _warned.add(what)
        log.warning("Beam %s is not among the versions %s that imagesr's %s was tested on: Beam's own behaviour "
                    "is kept", apache_beam.__version__, ", ".join(TESTED_BEAM), what)
    return False


def use_gzip_level(level: int = GZIP_LEVEL) -> bool:
    """Write gzip at ``level`` from now on in this process; False when the guard kept Beam's own."""
    if not _guard("gzip level"):
        return False
    import zlib

    from apache_beam.io import filesystem

    cls = filesystem.CompressedFile
    if getattr(cls, "_imagesr_gzip_level", None) == level:
        return True
    original = getattr(cls, "_imagesr_original_init_compressor", cls._initialize_compressor)

    def _initialize_compressor(self):
        if self._compression_type == filesystem.CompressionTypes.GZIP:
            self._compressor = zlib.compressobj(level, zlib.DEFLATED, self._gzip_mask)
        else:
            original(self)

    cls._imagesr_original_init_compressor = original
    cls._initialize_compressor = _initialize_compressor
    cls._imagesr_gzip_level = level
    return True


def use_fast_crc32c() -> bool:
    """Checksum TFRecords with google-crc32c from now on in this process; False when the guard
    kept Beam's own, or google-crc32c is not installed."""
    if not _guard("fast crc32c"):
        return False
    try:
        import google_crc32c
        from apache_beam.io import tfrecordio
    except ImportError:
        return False
    if getattr(tfrecordio._default_crc32c_fn, "fn", None) is None:
        tfrecordio._default_crc32c_fn.fn = google_crc32c.value
    return tfrecordio._default_crc32c_fn.fn is google_crc32c.value
