"""The Pusher, with a push folder of its own for every push.

TFX's Pusher names the push folder ``<push_dir>/<Unix seconds>`` and, when that folder exists
already (two pushes in one second, two runs at once), skips the copy yet records the push as
made there: the served model is then another run's while MLMD says it is this one's. Here the
folder is claimed exclusively (locally ``mkdir``; the next free second when taken), the model
is copied beside it under a temporary name and renamed into it complete, so a pushed folder is
never reused and never half-written. On gs:// (no exclusive create) the next second whose
folder does not exist is taken; local runs on one MLMD store are serialised by
:mod:`imagesr.pipelines.local_runner`'s lock.
"""

import os
import shutil
import time
from typing import Any, Dict, List, Tuple

from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from imagesr.core import fs
from imagesr.core.outputs import claim_partial, remove_quietly


def claim_version(base: str, now: int = None) -> Tuple[str, str]:
    """(version, folder): a new push folder under ``base`` named by the Unix time in seconds,
    or the next second whose folder is free; created here (exclusively when local)."""
    version = int(time.time()) if now is None else int(now)
    if not fs.is_remote(base):
        os.makedirs(base, exist_ok=True)
    while True:
        path = fs.join(base, str(version))
        if fs.is_remote(base):
            if not fileio.exists(path):
                return str(version), path
        else:
            try:
                os.mkdir(path)
                return str(version), path
            except FileExistsError:
                pass
        version += 1


def copy_model(model_path: str, serving_path: str) -> None:
    """The model folder into ``serving_path`` (claimed, empty): locally copied beside it and
    renamed into place complete; on gs:// ``saved_model.pb`` last (TF Serving's sign that a
    version is complete)."""
    if fs.is_remote(serving_path):
        io_utils.copy_dir(model_path, serving_path, deny_regex_patterns=[r"saved_model\.pb$"])
        pb = os.path.join(model_path, "saved_model.pb")
        if fileio.exists(pb):
            io_utils.copy_file(pb, os.path.join(serving_path, "saved_model.pb"))
        return
    tmp = claim_partial(serving_path, folder=True)
    try:
        os.rmdir(tmp)
        if fs.is_remote(model_path):
            io_utils.copy_dir(model_path, tmp)
        else:
            shutil.copytree(model_path, tmp)
        os.replace(tmp, serving_path)  # onto the claimed empty folder
    except BaseException:
        remove_quietly(tmp)
        raise


class VersionedPushExecutor(pusher_executor.Executor):
    """TFX's Pusher executor with :func:`claim_version` and :func:`copy_model` for file-system
    destinations; the blessing check and MLMD properties are TFX's."""

    def Do(self, input_dict: Dict[str, List[Any]], output_dict: Dict[str, List[Any]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"push destination {destination.WhichOneof('destination')}")
        version, serving_path = claim_version(destination.filesystem.base_directory)
        try:
            copy_model(model_path, serving_path)
        except BaseException:
            if not fs.is_remote(serving_path):
                shutil.rmtree(serving_path, ignore_errors=True)  # the folder this push claimed
            raise
        io_utils.copy_dir(model_path, model_push.uri)  # the archive copy, as TFX keeps it
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


class Pusher(tfx.components.Pusher):
    """TFX's Pusher component (same id, inputs and properties) with :class:`VersionedPushExecutor`."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(VersionedPushExecutor)
