"""Run the TFX pipeline locally: LocalDagRunner, a sqlite MLMD store, DirectRunner for Beam.

One run at a time per MLMD store: a run holds the store's lock
(:class:`imagesr.core.outputs.OutputLock`, ``.metadata.sqlite.imagesr-lock`` beside it) from before
it starts to after its summary is read, and a second run on the same pipeline root is refused
with one line. Two runs at once would otherwise interleave in the store and in the push folder,
and each command could not tell its own run from the other's.
"""

import logging
import os
import shutil
import tempfile
import time
from typing import Dict, Optional

from tfx import v1 as tfx

from imagesr.core import fs
from imagesr.core.errors import UserError
from imagesr.core.outputs import OutputBusy, OutputLock, temporary_files_in
from imagesr.pipelines.tfx_pipeline import PipelineConfig, create_import_pipeline, create_pipeline

log = logging.getLogger(__name__)


def metadata_config(config: PipelineConfig):
    os.makedirs(os.path.dirname(os.path.abspath(config.metadata_path)), exist_ok=True)
    return tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path)


def check_root(config: PipelineConfig) -> None:
    """A local pipeline root (and the store's folder) must be folders, or creatable."""
    for what, path in (("pipeline root", config.root), ("MLMD store folder", os.path.dirname(os.path.abspath(config.metadata_path)))):
        if fs.is_remote(path):
            continue
        if os.path.exists(path) and not os.path.isdir(path):
            raise UserError(f"{what} {path}: exists and is not a folder")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise UserError(f"{what} {path}: cannot create it: {e.strerror or e}") from None


def hold_store(config: PipelineConfig) -> OutputLock:
    """The lock of ``config``'s MLMD store, held (:class:`UserError` when another run holds it)."""
    lock = OutputLock(config.metadata_path)
    try:
        return lock.acquire()
    except OutputBusy:
        raise UserError(f"pipeline root {config.root}: another imagesr pipeline run is using it (it holds "
                        f"{lock.lock_path}); wait for it to finish, or give this run another --root") from None


def run(config: PipelineConfig, import_model: Optional[str] = None) -> Dict:
    """Run the pipeline to the end (or to the first failing component); return the run summary
    from MLMD (``imagesr.pipelines.runs.show``) for the run just made. ``import_model``: instead
    of making patches and training, evaluate and push that model (trained elsewhere)."""
    from imagesr.pipelines.config import check

    check(config, importing=import_model is not None)
    check_root(config)
    lock = hold_store(config)
    try:
        return _run(config, import_model)
    finally:
        lock.release()


def _run(config: PipelineConfig, import_model: Optional[str]) -> Dict:
    from imagesr.pipelines import runs

    before = {r["run_id"] for r in runs.list_runs(config.metadata_path)} if os.path.exists(config.metadata_path) else set()
    if import_model is not None:
        pipeline = create_import_pipeline(config, import_model, metadata_connection_config=metadata_config(config))
    else:
        pipeline = create_pipeline(config, metadata_connection_config=metadata_config(config))
    t0 = time.perf_counter()
    error = None
    # TFX's and Beam's temporary files (a packaged build of the user code per run, among
    # others) go to a folder of this run's own, removed whatever the outcome.
    tmp = tempfile.mkdtemp(prefix=".tmp-run-", dir=config.root if not fs.is_remote(config.root) else None)
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
    assert len(new) == 1, new  # the store's lock is held: this run is the only new one
    summary = runs.show(config.metadata_path, new[0]["run_id"])
    summary["seconds"] = round(seconds, 1)
    if error is not None:
        summary["error"] = f"{type(error).__name__}: {error}"
    return summary
