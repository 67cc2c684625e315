"""Aligned LR/HR patch sampling from one HR frame (pure numpy, vectorised per frame).

Per frame and scale ``s``: crop the frame to a multiple of ``s``, make the LR with the core
MATLAB bicubic (one resize per frame and scale, never per patch), cut HR patches of
``patch_size`` on a grid of ``stride`` and the LR patches at the same place (``/ s``), drop
near-flat patches (HR luma standard deviation below ``min_std``), keep at most
``max_patches_per_frame`` per scale (a seeded random subset), optionally apply dihedral
transforms and attach the residual ``HR - bicubic_up(LR patch)``. Everything random draws
from a generator seeded by (seed, source, frame, scale), so results are reproducible
regardless of the order in which frames are processed.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from imagesr.core.errors import UserError, check_keys, check_types
from imagesr.core.media.files import MAX_MEGAPIXELS
from imagesr.core.records import PatchPair
from imagesr.core.resize import crop_to_multiple, downscale, imresize, imresize_stack
from imagesr.core.scale import Scale
from imagesr.core.scale import scales as scales_of

DIHEDRAL_MODES = ("none", "random", "all")


@dataclass
class PatchOptions:
    """How frames become patch pairs. Defaults target VDSR-style training (48 px HR patches)."""

    scales: Tuple[float, ...] = (2, 3, 4)
    patch_size: int = 48  # HR patch side; must be divisible by every scale's modulus
    stride: int = 24  # HR grid step
    min_std: float = 4.0  # drop patches whose HR luma std is below this (0..255 levels)
    max_patches_per_frame: int = 0  # per scale; 0 = no cap
    dihedral: str = "none"  # none | random (one of 8 per patch) | all (8 variants per patch)
    degradation: str = "clean"  # clean | realistic | mixed (imagesr.core.degrade: drawn per source, seeded)
    residual: bool = False
    seed: int = 0
    max_megapixels: float = MAX_MEGAPIXELS  # a source whose frames are larger is dead-lettered, not decoded

    def __post_init__(self):
        # Checked as Scales, kept as plain numbers (the options travel as JSON to Beam workers).
        self.scales = tuple(s.to_json() for s in scales_of(self.scales))
        if not self.scales:
            raise UserError("at least one scale is needed")
        check_types(self, "patch option")
        for s in self.scales:
            m = Scale(s).modulus
            # HR patch side and stride must map to whole LR pixels.
            for name, v in (("patch_size", self.patch_size), ("stride", self.stride)):
                if v <= 0 or v % m:
                    raise UserError(f"{name}={v} must be a positive multiple of {m} for scale {s}")
        from imagesr.core.degrade import MODES as DEGRADATION_MODES

        if self.degradation not in DEGRADATION_MODES:
            raise UserError(f"degradation must be one of {DEGRADATION_MODES}, got {self.degradation!r}")
        if self.dihedral not in DIHEDRAL_MODES:
            raise UserError(f"dihedral must be one of {DIHEDRAL_MODES}, got {self.dihedral!r}")
        if self.min_std < 0 or self.max_patches_per_frame < 0:
            raise UserError("min_std and max_patches_per_frame must be >= 0")
        if self.max_megapixels <= 0:
            raise UserError(f"max_megapixels must be positive, got {self.max_megapixels}")

    def to_json(self) -> Dict:
        return asdict(self)


def frame_rng(seed: int, source: str, frame: int, scale: float) -> np.random.Generator:
    """A generator that depends only on what is being sampled, not on processing order."""
    digest = hashlib.sha256(f"{seed}|{source}|{frame}|{scale}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _luma(patches: np.ndarray) -> np.ndarray:
    return patches[..., 0] * 0.299 + patches[..., 1] * 0.587 + patches[..., 2] * 0.114


def _dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the 8 symmetries of the square (k in 0..7) on an HxWxC patch."""
    if k >= 4:
        a = a[:, ::-1]
    return np.ascontiguousarray(np.rot90(a, k % 4))


@dataclass
class FrameStats:
    candidates: int = 0
    flat: int = 0
    capped: int = 0
    kept: int = 0


def sample_frame(
    frame: np.ndarray,
    options: PatchOptions,
    dataset: str,
    source: str,
    frame_index: int = 0,
    stats: Dict[float, FrameStats] = None,
    lr_frames: Dict[float, np.ndarray] = None,
    degradation: str = "clean",
) -> Iterator[PatchPair]:
    """Yield the patch pairs of one HR frame for every scale in ``options``.

    ``lr_frames`` may hold a ready-made LR frame per scale (DIV2K's official
    ``LR_bicubic/X{s}``) to use instead of degrading with the core bicubic; the HR is then
    cropped to ``s`` times the LR's size. Frames smaller than one patch (after cropping)
    yield nothing for that scale; the caller counts that (``stats``) and decides whether the
    source as a whole failed.
    """
    p = options.patch_size
    for s in options.scales:
        st = FrameStats()
        if stats is not None:
            stats[s] = st
        given = (lr_frames or {}).get(s)
        if given is not None:
            lh, lw = given.shape[:2]
            hr = frame[: int(round(lh * s)), : int(round(lw * s))]
            if hr.shape[0] != int(round(lh * s)) or hr.shape[1] != int(round(lw * s)):
                raise UserError(f"LR frame {lw}x{lh} does not match HR {frame.shape[1]}x{frame.shape[0]} at x{s}")
        else:
            hr = crop_to_multiple(frame, s)
        h, w = hr.shape[:2]
        if h < p or w < p:
            continue
        lr = given if given is not None else downscale(hr, s)
        ys = np.arange(0, h - p + 1, options.stride)
        xs = np.arange(0, w - p + 1, options.stride)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        yy, xx = yy.ravel(), xx.ravel()
        st.candidates = len(yy)
        # All candidate HR patches at once as a strided view, flatness in one vector op.
        windows = np.lib.stride_tricks.sliding_window_view(hr, (p, p), axis=(0, 1))  # h', w', C, p, p
        cand = windows[yy, xx]  # N, C, p, p
        std = _luma(np.moveaxis(cand, 1, -1).astype(np.float32)).reshape(len(yy), -1).std(axis=1)
        keep = np.flatnonzero(std >= options.min_std)
        st.flat = st.candidates - len(keep)
        rng = frame_rng(options.seed, source, frame_index, s)
        cap = options.max_patches_per_frame
        if cap and len(keep) > cap:
            keep = np.sort(rng.choice(keep, size=cap, replace=False))
            st.capped = st.candidates - st.flat - cap
        scale = Scale(s)
        lp = scale.lr_side(p)
        items = []  # (y, x, dihedral variant), in the order the seeded draws are made
        for i in keep:
            y, x = int(yy[i]), int(xx[i])
            if options.dihedral == "none":
                variants = (0,)
            elif options.dihedral == "random":
                variants = (int(rng.integers(8)),)
            else:
                variants = range(8)
            items.extend((y, x, k) for k in variants)
        if not items:
            continue
        hrs = [_dihedral(hr[y:y + p, x:x + p], k) for y, x, k in items]
        lrs = [_dihedral(lr[scale.lr_side(y):scale.lr_side(y) + lp, scale.lr_side(x):scale.lr_side(x) + lp], k)
               for y, x, k in items]
        residuals = [None] * len(items)
        if options.residual:  # the whole frame's patches in one bicubic, each as its own imresize
            up = imresize_stack(np.stack(lrs), (p, p)).astype(np.int16)
            residuals = np.stack(hrs).astype(np.int16) - up
        for (y, x, _), hp, lpch, residual in zip(items, hrs, lrs, residuals):
            st.kept += 1
            yield PatchPair(lr=lpch, hr=hp, scale=s, dataset=dataset, source=source,
                            frame=frame_index, y=y, x=x, residual=residual, degradation=degradation)


def residual_target(lr_patch: np.ndarray, hr_patch: np.ndarray) -> np.ndarray:
    """HR minus the core bicubic upscale of the LR patch (int16), as stored in ``residual``."""
    return hr_patch.astype(np.int16) - imresize(lr_patch, size=hr_patch.shape[:2]).astype(np.int16)


@dataclass
class JobOptions:
    """Options of the patch job that are not PatchOptions fields (the CLI's and the TFX
    ExampleGen's), checked like them."""

    eval_fraction: float = 0.05  # share of sources in the eval split, in [0, 1)
    frame_stride: int = 5  # every k-th frame of videos and sequences
    max_frames: Optional[int] = None  # at most this many frames per video or sequence
    official_lr: bool = False  # DIV2K's LR_bicubic images when present

    def __post_init__(self):
        check_types(self, "patch option")
        if not 0 <= self.eval_fraction < 1:
            raise UserError(f"eval_fraction (--eval-fraction) must be in [0, 1), got {self.eval_fraction}")
        if self.frame_stride < 1 or (self.max_frames is not None and self.max_frames < 1):
            raise UserError(f"frame_stride and max_frames (--frame-stride, --max-frames) must be >= 1, got "
                            f"{self.frame_stride} and {self.max_frames}")


JOB_OPTIONS = asdict(JobOptions())


def split_options(options: dict):
    """(PatchOptions, job options as a dict) from one JSON-able dict, rejecting unknown keys
    and values of the wrong type or range."""
    if not isinstance(options, dict):
        raise UserError(f"patch options must be a mapping, got {options!r}")
    options = dict(options)
    job = {k: options.pop(k, v) for k, v in JOB_OPTIONS.items()}
    check_keys(options, PatchOptions, f"patch options (besides {', '.join(sorted(JOB_OPTIONS))})")
    return PatchOptions(**options), asdict(JobOptions(**job))


# --------------------------------------------------------------------------- the job's flags

JOB_DESCRIPTION = ("Turn images, DAVIS frame folders and videos into LR/HR patch-pair TFRecords with Apache Beam. "
                   "Unrecognised flags are Beam pipeline options (e.g. --project, --region, --temp_location, "
                   "--max_num_workers, --machine_type for --runner DataflowRunner).")


def add_job_arguments(p) -> None:
    """The patch job's flags on the argparse parser ``p`` (``imagesr patches`` and
    ``imagesr.pipelines.patch_job.run``), their defaults read from :class:`PatchOptions` and
    :class:`JobOptions`, so a default is declared once."""
    from imagesr.core.flags import field_defaults, positive_int
    from imagesr.core.scale import scale_argument

    po, jo = field_defaults(PatchOptions), field_defaults(JobOptions)
    p.add_argument("--input", action="append", required=True, help="file, folder or glob; local or gs://; repeatable")
    p.add_argument("--output", required=True, help="output folder, local or gs://")
    p.add_argument("--scales", type=scale_argument, nargs="+", default=list(po.scales),
                   help=f"SR scales (default {' '.join(f'{s:g}' for s in po.scales)}; 1.5 allowed)")
    p.add_argument("--patch-size", type=int, default=po.patch_size, help=f"HR patch side in pixels (default {po.patch_size})")
    p.add_argument("--stride", type=int, default=po.stride, help=f"HR patch grid step (default {po.stride})")
    p.add_argument("--min-std", type=float, default=po.min_std,
                   help=f"drop patches whose HR luma std is below this (default {po.min_std:g})")
    p.add_argument("--max-patches-per-frame", type=int, default=po.max_patches_per_frame,
                   help="cap per frame and scale, 0 = none (default)")
    p.add_argument("--dihedral", choices=DIHEDRAL_MODES, default=po.dihedral, help=f"dihedral augmentation (default {po.dihedral})")
    p.add_argument("--residual", action="store_true", help="also store HR - bicubic_up(LR) (int16)")
    p.add_argument("--degradation", choices=["clean", "realistic", "mixed"], default=po.degradation,
                   help="how LR is made: clean (MATLAB bicubic, default), realistic (per source, seeded: ffmpeg or "
                        "MATLAB kernel, slight blur/noise, JPEG or H.264 over the frames as a sequence), or "
                        "mixed (half of the sources each)")
    p.add_argument("--eval-fraction", type=float, default=jo.eval_fraction,
                   help=f"share of sources in the eval split (default {jo.eval_fraction:g})")
    p.add_argument("--frame-stride", type=int, default=jo.frame_stride,
                   help=f"use every k-th frame of videos and sequences (default {jo.frame_stride})")
    p.add_argument("--max-frames", type=int, default=jo.max_frames, help="at most this many frames per video/sequence")
    p.add_argument("--official-lr", action="store_true", help="use DIV2K's LR_bicubic images when present")
    p.add_argument("--seed", type=int, default=po.seed)
    p.add_argument("--max-megapixels", type=float, default=po.max_megapixels, metavar="MP",
                   help=f"pixel budget of a source's frames: a source whose frames are larger is dead-lettered before "
                        f"it is decoded (default {po.max_megapixels:g}: 8K UHD fits)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished dataset already in --output")
    p.add_argument("--runner", default="DirectRunner", help="DirectRunner (default) or DataflowRunner, ...")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local worker processes (default and at most: the CPU cores, and no more than the sources)")
    p.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
