"""Degradations: how an HR frame becomes the LR input a model will see.

* ``clean``: MATLAB bicubic (``imagesr.core.resize``), the SR papers' protocol;
* ``realistic``: what real 720p video went through, drawn per source (seeded by the job's seed
  and the source's id, so the same inputs give the same records): the downscaling kernel
  (MATLAB bicubic, or ffmpeg's bicubic, bilinear, lanczos or area), optionally a slight blur
  before it and sensor-like noise after it, then compression by the real encoders: JPEG for
  an image, H.264 over a video's or a sequence's LR frames *as a sequence*, so that
  inter-frame prediction is real, decoded back;
* ``mixed``: each source clean or realistic, half and half (seeded).

A :class:`Degradation` is the one type from the command line to the records to the
evaluator; its compact name (``h264-crf27+lanczos+noise1.5``, :func:`parse` reads it back) is
its form in text: the records, the manifest, the evaluator's config and metrics. H.265
(``h265-crf28+bicubic``) is a degradation to evaluate on (``imagesr evaluate --degradation``)
where ffmpeg has libx265; the patch job's realistic draws use H.264 only, so that the same
inputs give the same records on every machine. :data:`REAL_VIDEO` is the evaluator's default
real-video path: ffmpeg's bicubic downscale, then H.264 CRF 23 in 4:2:0.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

import numpy as np

from imagesr.core.errors import UserError
from imagesr.core.resize import imresize

MODES = ("clean", "realistic", "mixed")
FFMPEG_KERNELS = ("bicubic", "bilinear", "lanczos", "area")
KERNELS = ("matlab",) + FFMPEG_KERNELS
CODECS = ("none", "jpeg", "h264", "h265")


@dataclass(frozen=True)
class Degradation:
    kernel: str = "matlab"  # matlab | ffmpeg's bicubic / bilinear / lanczos / area
    blur: float = 0.0  # Gaussian sigma in HR pixels before downscaling (0: none)
    noise: float = 0.0  # Gaussian sigma in levels after downscaling (0: none)
    codec: str = "none"  # none | jpeg | h264 | h265
    quality: int = 0  # JPEG quality, or the CRF of H.264/H.265

    def __post_init__(self):
        if self.kernel not in KERNELS or self.codec not in CODECS:
            raise UserError(f"unknown degradation {self.kernel}/{self.codec} (kernels {KERNELS}, codecs {CODECS})")

    @property
    def name(self) -> str:
        """``clean`` for MATLAB bicubic alone, else e.g. ``h264-crf27+lanczos+blur0.6+noise1.5``."""
        if self == CLEAN:
            return "clean"
        parts = []
        if self.codec == "jpeg":
            parts.append(f"jpeg-q{self.quality}")
        elif self.codec != "none":
            parts.append(f"{self.codec}-crf{self.quality}")
        parts.append(self.kernel)
        if self.blur:
            parts.append(f"blur{self.blur:g}")
        if self.noise:
            parts.append(f"noise{self.noise:g}")
        return "+".join(parts)

    @property
    def family(self) -> str:
        """The mix at a glance: ``clean``, else the codec (``jpeg``, ``h264``, ``h265``), else the kernel."""
        if self == CLEAN:
            return "clean"
        return self.codec if self.codec != "none" else self.kernel

    def to_json(self) -> dict:
        return asdict(self)


CLEAN = Degradation()
REAL_VIDEO = Degradation(kernel="bicubic", codec="h264", quality=23)  # the evaluator's real-video default


def draw(mode: str, seed: int, source_id: str, kind: str) -> Degradation:
    """The degradation of one source: seeded by the job's seed and the source's id."""
    if mode not in MODES:
        raise UserError(f"--degradation must be one of {', '.join(MODES)}, got {mode!r}")
    digest = hashlib.sha256(f"{seed}/{source_id}/degradation".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    realistic = mode == "realistic" or (mode == "mixed" and rng.random() < 0.5)
    if not realistic:
        return CLEAN
    kernel = KERNELS[int(rng.integers(len(KERNELS)))]
    blur = round(float(rng.uniform(0.3, 1.0)), 2) if rng.random() < 0.3 else 0.0
    noise = round(float(rng.uniform(0.5, 3.0)), 1) if rng.random() < 0.3 else 0.0
    if kind == "image":
        codec, quality = "jpeg", int(rng.integers(40, 96))
    else:
        codec, quality = "h264", int(rng.integers(18, 33))
    return Degradation(kernel=kernel, blur=blur, noise=noise, codec=codec, quality=quality)


def _blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    out = gaussian_filter(frame.astype(np.float32), sigma=(sigma, sigma, 0), mode="mirror")
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def _ffmpeg_resize(frames: Sequence[np.ndarray], size, kernel: str) -> List[np.ndarray]:
    from imagesr.core.media import ffmpeg_binary

    h, w = frames[0].shape[:2]
    oh, ow = size
    cmd = [ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-i", "pipe:", "-vf", f"scale={ow}:{oh}:flags={kernel}", "-threads", "1",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
    out = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                         capture_output=True, check=True).stdout
    return list(np.frombuffer(out, np.uint8).reshape(len(frames), oh, ow, 3))


def _jpeg(frame: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=int(quality))
    with Image.open(io.BytesIO(buf.getvalue())) as img:
        return np.asarray(img.convert("RGB")).copy()


def _video_codec(frames: Sequence[np.ndarray], codec: str, crf: int) -> List[np.ndarray]:
    """Encode the frames as one sequence (4:2:0, one thread: deterministic) and decode them back."""
    import os
    import tempfile

    from imagesr.core.media import ffmpeg_binary

    h, w = frames[0].shape[:2]
    pad_h, pad_w = h % 2, w % 2  # 4:2:0 needs even sides: pad by one pixel, cut it off after
    raw = b"".join(np.ascontiguousarray(np.pad(f, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")).tobytes()
                   for f in frames)
    lib = {"h264": "libx264", "h265": "libx265"}[codec]
    extra = ["-x265-params", "log-level=error:pools=1:frame-threads=1"] if codec == "h265" else ["-threads", "1"]
    with tempfile.TemporaryDirectory(prefix="imagesr-degrade-") as tmp:
        path = os.path.join(tmp, "lr.mkv")
        subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                        "-s", f"{w + pad_w}x{h + pad_h}", "-framerate", "25", "-i", "pipe:", "-c:v", lib,
                        "-preset", "medium", "-crf", str(int(crf)), "-pix_fmt", "yuv420p", *extra, path],
                       input=raw, capture_output=True, check=True)
        out = subprocess.run([ffmpeg_binary(), "-nostdin", "-loglevel", "error", "-i", path, "-f", "rawvideo",
                              "-pix_fmt", "rgb24", "pipe:"], capture_output=True, check=True).stdout
    decoded = np.frombuffer(out, np.uint8).reshape(-1, h + pad_h, w + pad_w, 3)
    if len(decoded) != len(frames):
        raise RuntimeError(f"{codec} round trip gave {len(decoded)} frames for {len(frames)}")
    return [np.ascontiguousarray(d[:h, :w]) for d in decoded]


def has_h265() -> bool:
    from imagesr.core.media import ffmpeg_binary

    out = subprocess.run([ffmpeg_binary(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return " libx265 " in out


def check_available(deg: Degradation) -> Degradation:
    """``deg``, or one line saying this ffmpeg cannot make it (H.265 needs libx265)."""
    if deg.codec == "h265" and not has_h265():
        raise UserError(f"degradation {deg.name!r}: this ffmpeg has no libx265 encoder (H.265); use h264-crf...")
    return deg


def apply(frames: Sequence[np.ndarray], lr_size, deg: Degradation, seed: int = 0) -> List[np.ndarray]:
    """The LR frames of HR ``frames`` (one image, or consecutive frames of a sequence) at
    ``lr_size`` (h, w) under ``deg``: blur, downscale, noise, then compression over the
    frames as a sequence. ``seed`` seeds the noise."""
    frames = list(frames)
    if deg.blur:
        frames = [_blur(f, deg.blur) for f in frames]
    if deg.kernel == "matlab":
        lr = [imresize(f, size=lr_size) for f in frames]
    else:
        lr = _ffmpeg_resize(frames, lr_size, deg.kernel)
    if deg.noise:
        rng = np.random.default_rng(seed)
        lr = [np.clip(f.astype(np.float32) + rng.normal(0, deg.noise, f.shape), 0, 255).round().astype(np.uint8)
              for f in lr]
    if deg.codec == "jpeg":
        lr = [_jpeg(f, deg.quality) for f in lr]
    elif deg.codec in ("h264", "h265"):
        lr = _video_codec(lr, deg.codec, deg.quality)
    return lr


def parse(name: Optional[str]) -> Degradation:
    """A degradation from its name (``clean``, ``h264-crf23+bicubic``, ...), as the CLI and
    the evaluator's config take it."""
    if not name or name == "clean":
        return CLEAN
    kernel, blur, noise, codec, quality = "matlab", 0.0, 0.0, "none", 0
    example = "(e.g. h264-crf23+bicubic, jpeg-q75+area+noise1.5)"

    def number(part: str, prefix: str, cast):
        try:
            return cast(part[len(prefix):])
        except ValueError:
            raise UserError(f"degradation {name!r}: {part!r} needs a number {example}") from None

    for part in name.split("+"):
        if part in KERNELS:
            kernel = part
        elif part.startswith("blur"):
            blur = number(part, "blur", float)
        elif part.startswith("noise"):
            noise = number(part, "noise", float)
        elif part.startswith("jpeg-q"):
            codec, quality = "jpeg", number(part, "jpeg-q", int)
        elif part.startswith(("h264-crf", "h265-crf")):
            codec, quality = part[:4], number(part, part[:8], int)
        else:
            raise UserError(f"degradation {name!r}: unknown part {part!r} {example}")
    if not (np.isfinite(blur) and np.isfinite(noise)) or blur < 0 or noise < 0 or quality < 0:
        raise UserError(f"degradation {name!r}: blur, noise and quality must be finite and not negative")
    return Degradation(kernel=kernel, blur=blur, noise=noise, codec=codec, quality=quality)
