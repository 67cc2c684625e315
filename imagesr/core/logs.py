"""Logging for the command line: imagesr's own modules at INFO, the frameworks quieter."""

import logging
import os
import warnings

OWN_LOGGERS = ("imagesr",)  # every layer: imagesr.training, imagesr.components, ...
QUIET_WORKERS = "IMAGESR_QUIET_WORKERS"


def configure_logging(verbose: bool = False) -> None:
    """Our own modules at INFO (DEBUG with -v); TFX/absl/Beam/TensorFlow quieter unless -v:
    their INFO lines (whole component protos per execution) would bury the progress lines."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)
    warnings.filterwarnings("ignore", message=".*google-cloud-storage < 3.0.0.*", category=FutureWarning)
    # google-api-core warns at every import, in Beam's worker processes too (inherited).
    os.environ.setdefault("PYTHONWARNINGS", "ignore:You are using a non-supported Python version:FutureWarning")
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow C++ start-up chatter (cuDNN/cuFFT "errors")
        # Local Beam workers print a failed bundle's traceback on their own stderr; the driver
        # gets the same error and reports it (one line for bad input or a full disk, the whole
        # traceback for a bug), so a local worker's stderr is not shown (imagesr.components.
        # patch_transform.quiet_worker_stderr) unless -v.
        os.environ.setdefault(QUIET_WORKERS, "1")
        try:
            import absl.logging

            # TFX's LocalDagRunner warns on every resolver query ("property_predicate is not supported")
            absl.logging.set_verbosity(absl.logging.ERROR)
        except ImportError:
            pass
