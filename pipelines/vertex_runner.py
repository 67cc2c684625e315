"""Compile the TFX pipeline for Vertex AI Pipelines (KubeflowV2DagRunner): the Trainer as a
Vertex AI training job on a GPU machine, the Beam components on Dataflow.

    imagesr pipeline compile-vertex --config infra/vertex/pipeline.json --cloud infra/vertex/cloud.json --out imagesr_vertex.json

The JSON is what `gcloud ai pipelines run`/`aiplatform.PipelineJob(template_path=...)` submit;
compiling needs no cloud access (the tests do it offline).
"""

import json
import os
import re
from dataclasses import MISSING, asdict, dataclass, field
from typing import Dict, List, Optional

from tfx import v1 as tfx

from imagesr.core.errors import UserError, check_keys
from imagesr.pipelines.tfx_pipeline import PipelineConfig, create_pipeline

BEAM_COMPONENTS = ("PatchExampleGen", "StatisticsGen")


@dataclass
class CloudConfig:
    """Where and on what the pipeline runs in Google Cloud. No defaults for what is yours (the
    project, the images, the bucket): a compiled pipeline never points at a placeholder."""

    project: str
    region: str
    worker_image: str  # infra/Dockerfile: Beam SDK + ffmpeg + imagesr (Dataflow, the other components)
    trainer_image: str  # infra/Dockerfile.trainer: TensorFlow 2.16 built for CUDA + TFX + imagesr (the GPU Trainer)
    temp_location: str  # gs://BUCKET/tmp
    trainer_machine_type: str = "a2-highgpu-1g"
    trainer_accelerator_type: str = "NVIDIA_TESLA_A100"
    trainer_accelerator_count: int = 1
    dataflow_machine_type: str = "n2-highcpu-16"
    dataflow_max_workers: int = 50
    extra_beam_args: List[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Optional[str]) -> "CloudConfig":
        if not path:
            raise UserError("compile-vertex needs --cloud FILE: your project, region, worker_image, trainer_image and "
                            "temp_location (example: infra/vertex/cloud.json)")
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"cloud config {path}: {e}") from None
        check_keys(data, cls, "cloud config keys")
        missing = [k for k, f in cls.__dataclass_fields__.items()
                   if k not in data and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise UserError(f"cloud config {path}: missing {', '.join(missing)}")
        if not str(data["temp_location"]).startswith("gs://"):
            raise UserError(f"cloud config {path}: temp_location must be a gs:// path")
        return cls(**data)

    def dataflow_args(self) -> List[str]:
        return [
            "--runner=DataflowRunner", f"--project={self.project}", f"--region={self.region}",
            f"--temp_location={self.temp_location}", f"--machine_type={self.dataflow_machine_type}",
            f"--max_num_workers={self.dataflow_max_workers}", f"--sdk_container_image={self.worker_image}",
            "--experiments=use_runner_v2", *self.extra_beam_args,
        ]

    def vertex_training_spec(self) -> Dict:
        return {
            "project": self.project,
            "worker_pool_specs": [{
                "machine_spec": {"machine_type": self.trainer_machine_type,
                                 "accelerator_type": self.trainer_accelerator_type,
                                 "accelerator_count": self.trainer_accelerator_count},
                "replica_count": 1,
                "container_spec": {"image_uri": self.trainer_image},
            }],
        }


def compile_pipeline(config: PipelineConfig, cloud: CloudConfig, output_path: str) -> str:
    """Write the Vertex pipeline JSON for ``config`` to ``output_path``; return the path."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", config.name):
        raise UserError(f"pipeline config name {config.name!r}: Vertex AI takes lower-case letters, digits and '-' only")
    vertex = tfx.extensions.google_cloud_ai_platform

    def gpu_trainer(**kwargs):
        custom = dict(kwargs.pop("custom_config") or {})
        custom.update({
            vertex.ENABLE_VERTEX_KEY: True,
            vertex.VERTEX_REGION_KEY: cloud.region,
            vertex.TRAINING_ARGS_KEY: cloud.vertex_training_spec(),
        })
        return vertex.Trainer(custom_config=custom, **kwargs)

    config = PipelineConfig(**{**asdict(config), "beam_args": []})
    pipeline = create_pipeline(
        config, trainer_factory=gpu_trainer,
        beam_args_by_component={c: cloud.dataflow_args() for c in BEAM_COMPONENTS},
    )
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=cloud.worker_image),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path),
    )
    runner.run(pipeline, write_out=True)
    return output_path
