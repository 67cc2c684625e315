"""Run the TFX pipeline locally: LocalDagRunner, a sqlite MLMD store, DirectRunner for Beam."""

import logging
import os
import shutil
import tempfile
import time
from typing import Dict, Optional

from tfx import v1 as tfx

from imagesr.outputs import temporary_files_in
from imagesr.pipelines.tfx_pipeline import PipelineConfig, create_import_pipeline, create_pipeline

log = logging.getLogger(__name__)


def metadata_config(config: PipelineConfig):
    os.makedirs(os.path.dirname(os.path.abspath(config.metadata_path)), exist_ok=True)
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)


def run(config: PipelineConfig, import_model: Optional[str] = None) -> Dict:
    """Run the pipeline to the end (or to the first failing component); return the run summary
    from MLMD (``imagesr.pipelines.runs.show``) for the run just made. ``import_model``: instead
    of making patches and training, evaluate and push that model (trained elsewhere)."""
    from imagesr.pipelines import runs
    from imagesr.pipelines.config import check

    check(config, importing=import_model is not None)
    os.makedirs(config.root, exist_ok=True)
    before = {r["run_id"] for r in runs.list_runs(config.metadata_path)} if os.path.exists(config.metadata_path) else set()
    if import_model is not None:
        pipeline = create_import_pipeline(config, import_model, metadata_connection_config=metadata_config(config))
    else:
        pipeline = create_pipeline(config, metadata_connection_config=metadata_config(config))
    t0 = time.perf_counter()
    error = None
    # TFX's and Beam's temporary files (a packaged build of the user code per run, among
    # others) go to a folder of this run's own, removed whatever the outcome.
    tmp = tempfile.mkdtemp(prefix=".tmp-run-", dir=config.root)
    try:
        with temporary_files_in(tmp):
            tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as e:  # noqa: BLE001 - reported with the run's state below
        error = e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - t0
    new = [r for r in runs.list_runs(config.metadata_path) if r["run_id"] not in before]
    if not new:
        raise RuntimeError(f"the pipeline did not start: {error}") from error
    summary = runs.show(config.metadata_path, new[-1]["run_id"])
    summary["seconds"] = round(seconds, 1)
    if error is not None:
        summary["error"] = f"{type(error).__name__}: {error}"
    return summary
