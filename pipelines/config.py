"""The TFX pipeline's configuration (:class:`PipelineConfig`), loaded from JSON or YAML and
checked section by section without importing TFX, so a bad config fails in seconds with a
one-line reason, before any component runs."""

import json
import os
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from imagesr import schemas as _schemas
from imagesr.core import fs
from imagesr.core.errors import UserError, check_types
from imagesr.core.outputs import cache_dir
from imagesr.core.scale import Scale

SCHEMA_DIR = os.path.dirname(os.path.abspath(_schemas.__file__))  # schema.pbtxt, installed or in the checkout


@dataclass
class PipelineConfig:
    """Everything a run needs. Loaded from JSON/YAML by :func:`load_config`."""

    name: str = "imagesr"
    root: str = field(default_factory=lambda: cache_dir("tfx"))  # artifacts
    metadata_path: Optional[str] = None  # sqlite MLMD; default <root>/metadata.sqlite
    push_dir: Optional[str] = None  # where blessed models go (local or gs://); default <root>/serving
    inputs: List[str] = field(default_factory=list)  # media: folders, files, globs (local or gs://)
    patch: Dict = field(default_factory=lambda: {"scales": [1.5], "residual": True})  # PatchOptions + job options
    train: Dict = field(default_factory=lambda: {"model": "subpixel", "scales": [1.5], "steps": 300, "batch_size": 16})
    evaluator: Dict = field(default_factory=dict)  # EvaluatorConfig fields
    beam_args: List[str] = field(default_factory=lambda: ["--direct_num_workers=0", "--direct_running_mode=multi_processing"])
    schema_dir: str = SCHEMA_DIR
    warm_start: Optional[str] = None  # a model dir / .keras file (retrain: the latest pushed model)
    enable_cache: bool = False

    def __post_init__(self):
        check_types(self, "pipeline config")
        check_name(self.name)
        self.metadata_path = self.metadata_path or os.path.join(self.root, "metadata.sqlite")
        self.push_dir = self.push_dir or os.path.join(self.root, "serving")

    def to_json(self) -> Dict:
        return asdict(self)


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")  # TFX allows 63 characters
DEMO_NAME = "imagesr-demo"


def check_name(name: str) -> None:
    """A pipeline name is a name, not a path: it becomes the folder ``<root>/pipelines/<name>``
    and MLMD's context names, so ``/abs/dir`` or ``../x`` would put artefacts outside the root."""
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise UserError(f"pipeline config name {name!r}: a pipeline name is letters, digits, '-', '_' and '.' "
                        "(at most 63, no '..'), not a path")


def demo_workdir(workdir: Optional[str] = None) -> str:
    """Where ``imagesr demo`` writes its samples and its pipeline root (``<workdir>/tfx``)."""
    return os.path.abspath(workdir or cache_dir("demo"))


def default_metadata_paths() -> List[str]:
    """The MLMD stores of runs made without a --root: ``imagesr pipeline run``'s default root,
    then the demo's. ``imagesr runs`` / ``report`` look there when told nowhere else."""
    return [PipelineConfig().metadata_path, PipelineConfig(root=os.path.join(demo_workdir(), "tfx")).metadata_path]


def load_config(path: Optional[str] = None, importing: bool = False, check_sections: bool = True,
                **overrides) -> PipelineConfig:
    """PipelineConfig from a JSON or YAML file (unknown keys are an error), then overrides;
    checked (:func:`check`) for a run that trains, or with ``importing`` for one that imports,
    unless ``check_sections`` is false (reading runs back needs only where they are)."""
    data: Dict = {}
    if path:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise UserError(f"pipeline config {path}: {e.strerror or e}") from None
        try:
            if path.endswith((".yaml", ".yml")):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        except Exception as e:  # noqa: BLE001 - JSON and YAML parse errors alike
            raise UserError(f"pipeline config {path} does not parse: {e}") from None
        if not isinstance(data, dict):
            raise UserError(f"pipeline config {path} must be a mapping of settings, got {type(data).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(data) - set(PipelineConfig.__dataclass_fields__)
    if unknown:
        raise UserError(f"unknown pipeline config keys {sorted(unknown)} (known: {sorted(PipelineConfig.__dataclass_fields__)})")
    config = PipelineConfig(**data)
    if check_sections:
        check(config, importing)
    return config


def check(config: PipelineConfig, importing: bool = False) -> None:
    """Every section checked the way its component will read it (unknown keys, the type and
    range of every value, local folders it names, a training scale the patches do not make), in
    seconds, before TFX or Beam load. ``importing``: a run that evaluates and pushes a model
    trained elsewhere uses the evaluator's section only, and only that is checked."""
    from imagesr.components.tfx.evaluator_config import EvaluatorConfig
    from imagesr.core.patches import split_options
    from imagesr.training.trainer import TrainConfig

    where = "pipeline config"
    try:
        evaluator = EvaluatorConfig.from_dict(config.evaluator)
    except (TypeError, ValueError) as e:
        raise UserError(f"{where} 'evaluator': {e}") from None
    named = [("evaluator benchmarks", b) for b in evaluator.benchmarks] + [("evaluator timing_video", evaluator.timing_video)]
    if not importing:
        named.append(("warm_start", config.warm_start))
    for what, path in named:
        if path and not fs.is_remote(path) and not os.path.exists(path):
            raise UserError(f"{where} {what} {path}: no such file or folder")
    if importing:
        return
    try:
        patch_options, _ = split_options(config.patch)
    except (TypeError, ValueError) as e:
        raise UserError(f"{where} 'patch': {e}") from None
    try:
        train = TrainConfig.from_dict(dict(config.train, warm_start=config.warm_start))
    except (TypeError, ValueError) as e:
        raise UserError(f"{where} 'train': {e}") from None
    if train.crop is not None and train.crop > patch_options.patch_size:
        raise UserError(f"{where}: 'train' crop {train.crop} is larger than the 'patch' patch_size "
                        f"{patch_options.patch_size}")
    from imagesr.training.models import spec

    if spec(train.model).fixed_scale and "scales" in config.evaluator:
        served = Scale(train.scales[0])
        if served not in {Scale(s) for s in evaluator.scales}:
            raise UserError(f"{where}: 'evaluator' scales {', '.join(f'x{Scale(s)}' for s in evaluator.scales)} do not "
                            f"include x{served}, the only scale the trained {train.model} model serves")
    made = [Scale(s) for s in patch_options.scales]
    missing = [s for s in train.scales if Scale(s) not in made]
    if missing:
        raise UserError(f"{where}: 'train' scales {', '.join(f'x{s:g}' for s in missing)} are not among the "
                         f"'patch' scales {', '.join(f'x{s:g}' for s in made)}: the Trainer would find no records")
    if not config.inputs:
        raise UserError(f"{where} lists no inputs (media folders, files or globs)")
