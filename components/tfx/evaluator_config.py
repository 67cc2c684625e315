"""The SR evaluator's settings, apart from the TFX component so that a pipeline config can be
checked without loading TFX."""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from imagesr.core.degrade import Degradation, parse
from imagesr.core.errors import UserError, check_keys, check_types


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
    # (imagesr.core.degrade; None: off), blessed against bicubic through the same path by its margin.
    real_video: Optional[str] = "h264-crf23+bicubic"
    real_video_margin_db: float = 0.0

    def __post_init__(self):
        from imagesr.core.scale import scales as scales_of

        self.scales = tuple(s.to_json() for s in scales_of(self.scales))
        check_types(self, "evaluator option")
        for name in ("timing_input", "timing_output"):
            size = getattr(self, name)
            if len(size) != 2 or min(size) < 1:
                raise UserError(f"evaluator option {name}: expected [height, width] in pixels, got {list(size)}")
        low = {k: v for k, v in (("timing_frames", self.timing_frames), ("timing_repeats", self.timing_repeats),
                                 ("timing_batch", self.timing_batch)) if v < 1}
        if low or self.max_eval_frames < 0 or (self.time_budget_s is not None and self.time_budget_s <= 0):
            raise UserError(f"evaluator options out of range: timing_frames, timing_repeats, timing_batch must be >= 1 "
                            f"({low or 'they are'}), max_eval_frames >= 0 ({self.max_eval_frames}), time_budget_s "
                            f"positive or null ({self.time_budget_s})")
        self.real_video_degradation  # a bad degradation name is one line now, not after training

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
