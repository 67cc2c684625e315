"""The TFX pipeline: patch ExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator
-> (validation gate) -> Trainer -> Resolver (latest blessed model) -> SR evaluator -> Pusher.

One factory, :func:`create_pipeline`, with every path and knob in :class:`PipelineConfig`
(the penguin example's shape, with settings grouped in a dataclass); the runners only wire
configuration: ``imagesr.pipelines.local_runner`` (LocalDagRunner, sqlite MLMD, DirectRunner) and
``imagesr.pipelines.vertex_runner`` (Vertex pipeline JSON, Trainer on a GPU machine, Dataflow).
"""

import json
import os
from typing import Dict, Optional

from tfx import v1 as tfx

from imagesr.core import fs
from imagesr.core.errors import UserError
from imagesr.pipelines.config import SCHEMA_DIR, PipelineConfig, load_config  # noqa: F401  (the config's home; re-exported)
from imagesr.training.trainer import TrainConfig, trainer_custom_config


def create_pipeline(config: PipelineConfig, trainer_factory=None, beam_args_by_component: Optional[Dict] = None,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    """The pipeline for ``config``.

    ``trainer_factory(**kwargs)`` builds the Trainer (default ``tfx.components.Trainer``; the
    Vertex runner passes the Vertex AI training Trainer that requests a GPU machine);
    ``beam_args_by_component`` adds Beam arguments per component id (Dataflow in the cloud).
    """
    from imagesr.components.tfx.patch_example_gen import PatchExampleGen
    from imagesr.components.tfx.validation_gate import ValidationGate

    if not config.inputs:
        raise UserError("the pipeline config lists no inputs (media folders, files or globs)")
    example_gen = PatchExampleGen(inputs=json.dumps(config.inputs), options=json.dumps(config.patch))
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.ImportSchemaGen(schema_file=os.path.join(config.schema_dir, "schema.pbtxt"))
    validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    gate = ValidationGate(anomalies=validator.outputs["anomalies"])

    train = dict(config.train)
    if config.warm_start:
        train["warm_start"] = config.warm_start
    trainer_kwargs = dict(
        run_fn="imagesr.training.trainer.run_fn",
        examples=example_gen.outputs["examples"],
        train_args=tfx.proto.TrainArgs(num_steps=TrainConfig.from_dict(train).steps),
        custom_config=trainer_custom_config(train),
    )
    trainer = (trainer_factory or tfx.components.Trainer)(**trainer_kwargs)
    trainer.add_upstream_node(gate)  # no training on records that break the schema

    baseline, evaluator, pusher = _judge_and_push(trainer.outputs["model"], config, examples=example_gen.outputs["examples"])
    components = [example_gen, statistics_gen, schema_gen, validator, gate, trainer, baseline, evaluator, pusher]
    for c in components:
        extra = (beam_args_by_component or {}).get(c.id)
        if extra:
            c.with_beam_pipeline_args(extra)
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=_pipeline_root(config),
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )


def create_import_pipeline(config: PipelineConfig, model_source: str, metadata_connection_config=None) -> tfx.dsl.Pipeline:
    """A model trained elsewhere (``model_source``: a model folder or a ``.keras`` file, local
    or gs://) -> ModelImporter (a copy in the pipeline root, with its provenance) -> Resolver
    (latest blessed model) -> SREvaluator -> Pusher: blessed or rejected exactly like a model
    the pipeline trained, under the same pipeline name, so the two kinds of run compare."""
    from imagesr.components.tfx.model_importer import ModelImporter

    importer = ModelImporter(source=model_source)
    baseline, evaluator, pusher = _judge_and_push(importer.outputs["model"], config)
    return tfx.dsl.Pipeline(
        pipeline_name=config.name,
        pipeline_root=_pipeline_root(config),
        components=[importer, baseline, evaluator, pusher],
        enable_cache=False,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_args),
    )


def _judge_and_push(model, config: PipelineConfig, examples=None):
    """The tail both pipelines share: the latest blessed model (Resolver) as the baseline, the SR
    evaluator judging ``model`` against it (on the eval split's frames when ``examples`` is
    given), the Pusher of a blessed model."""
    from imagesr.components.tfx.sr_evaluator import SREvaluator

    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = SREvaluator(model=model, baseline_model=baseline.outputs["model"], config=json.dumps(config.evaluator),
                            **({"examples": examples} if examples is not None else {}))
    return baseline, evaluator, _pusher(model, evaluator.outputs["blessing"], config)


def _pusher(model, blessing, config: PipelineConfig):
    """The Pusher: a blessed model to a new folder of its own under ``config.push_dir``."""
    from imagesr.components.tfx.push import Pusher

    return Pusher(model=model, model_blessing=blessing, push_destination=tfx.proto.PushDestination(
        filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.push_dir)))


def _pipeline_root(config: PipelineConfig) -> str:
    return os.path.join(config.root, "pipelines", config.name) if not fs.is_remote(config.root) else \
        f"{config.root}/pipelines/{config.name}"
