"""The SR evaluator's settings, apart from the TFX component so that a pipeline config can be
checked without loading TFX."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from imagesr.degrade import Degradation, parse
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

    def __post_init__(self):
        self.real_video_degradation  # a bad name fails when the config is read, in one line

    @property
    def real_video_degradation(self) -> Optional[Degradation]:
        return None if self.real_video is None else parse(self.real_video)

    @classmethod
    def from_dict(cls, d: Dict) -> "EvaluatorConfig":
        check_keys(d, cls, "evaluator options")
        return cls(**d)


def describe_timing(setup: Dict) -> str:
    """What the timing measured, from the setup it ran with: ``30 frames 1280x720 -> 1920x1080``."""
    (ih, iw), (oh, ow) = setup["input"], setup["output"]
    return f"{setup['frames']} frames {iw}x{ih} -> {ow}x{oh}"


def row_label(row: Dict) -> str:
    """A PSNR row's benchmark as people read it: ``Set5``, ``Set5 [h264-crf23+bicubic]``."""
    return row["benchmark"] if row.get("degradation", "clean") == "clean" else f"{row['benchmark']} [{row['degradation']}]"
