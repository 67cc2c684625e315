"""The patch ExampleGen: a TFX component whose Beam transform is the patch-pair job.

It discovers the media under ``inputs``, runs ``imagesr.components.beam.patch_dataset`` on the Beam
pipeline TFX hands it (DirectRunner locally, Dataflow through ``beam_pipeline_args``) and
writes the ``train``/``eval`` splits straight into its Examples artifact, once: a generic
ExampleGen over already-written TFRecords would copy hundreds of thousands of large records
a second time. The manifest and dead-letter list sit beside the splits in the artifact, and
the counts become custom properties (visible in MLMD and ``imagesr runs show``).
"""


import json
import logging

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from tfx import v1 as tfx
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts

from imagesr.components.beam.patch_dataset import produce_dataset
from imagesr.components.beam.patch_transform import BeamFS
from imagesr.core.dataset import SPLITS
from imagesr.core.patches import split_options
from imagesr.core.sources import assign_splits, discover

log = logging.getLogger(__name__)

OutputArtifact = tfx.dsl.components.OutputArtifact
Parameter = tfx.dsl.components.Parameter
BeamComponentParameter = tfx.dsl.components.BeamComponentParameter

@tfx.dsl.components.component(use_beam=True)
def PatchExampleGen(
    examples: OutputArtifact[standard_artifacts.Examples],
    inputs: Parameter[str],
    options: Parameter[str] = "{}",
    beam_pipeline: BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Media (JSON list of folders/files/globs, local or gs://) -> Examples with train/eval splits.

    ``options``: JSON of PatchOptions fields (scales, patch_size, stride, min_std,
    max_patches_per_frame, dihedral, residual, seed) plus eval_fraction, frame_stride,
    max_frames, official_lr.
    """
    media = json.loads(inputs)
    if isinstance(media, str):
        media = [media]
    patch_options, job = split_options(json.loads(options))
    FileSystems.set_options(beam_pipeline.options)
    sources = assign_splits(
        discover(media, fs=BeamFS(), official_lr=job["official_lr"], scales=patch_options.scales), job["eval_fraction"]
    )
    manifest_base = {
        "version": 1, "run_id": "tfx", "output": examples.uri, "inputs_given": media,
        "options": dict(patch_options.to_json(), **job), "producer": "PatchExampleGen",
    }
    manifest = produce_dataset(
        beam_pipeline, [s.to_json() for s in sources], patch_options, examples.uri, manifest_base,
        frame_stride=job["frame_stride"], max_frames=job["max_frames"], overwrite=True,
    )
    examples.split_names = artifact_utils.encode_split_names(list(SPLITS))
    examples_utils.set_payload_format(examples, example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)
    c = manifest["counts"]
    examples.set_int_custom_property("pairs", c["pairs"])
    for split in SPLITS:
        examples.set_int_custom_property(f"pairs_{split}", c["pairs_by_split"][split])
    examples.set_int_custom_property("sources_ok", c["sources"]["ok"])
    examples.set_int_custom_property("sources_partial", c["sources"]["partial"])
    examples.set_int_custom_property("sources_failed", c["sources"]["failed"])
    log.info("PatchExampleGen: %d pairs (%s) from %d sources (%d failed)", c["pairs"], c["pairs_by_split"],
             c["sources"]["total"], c["sources"]["failed"])
