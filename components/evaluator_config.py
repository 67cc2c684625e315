"""The SR evaluator's settings, apart from the TFX component so that a pipeline config can be
checked without loading TFX."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from imagesr.errors import check_keys


@dataclass
class EvaluatorConfig:
    benchmarks: List[str] = field(default_factory=list)  # HR image folders; [] = built-in sample images
    scales: Sequence[float] = (2, 3, 4)  # a fixed-scale model is evaluated at its own scale only
    eval_split_scale: float = 1.5
    max_eval_frames: int = 8
    margin_db: float = 0.05
    tolerance_db: float = 0.05
    time_budget_s: Optional[float] = None
    timing_frames: int = 30
    timing_repeats: int = 3
    timing_batch: int = 2
    timing_input: Sequence[int] = (720, 1280)
    timing_output: Sequence[int] = (1080, 1920)
    timing_video: Optional[str] = None  # default: the built-in 720p sample clip
    # The real-video benchmark: every benchmark again with its LR made by this degradation
    # (imagesr.degrade; None: off), blessed against bicubic through the same path by its margin.
    real_video: Optional[str] = "h264-crf23+bicubic"
    real_video_margin_db: float = 0.0

    @classmethod
    def from_dict(cls, d: Dict) -> "EvaluatorConfig":
        check_keys(d, cls, "evaluator options")
        return cls(**d)
