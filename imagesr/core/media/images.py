"""Images through Pillow: any mode -> 8-bit RGB, EXIF orientation applied; atomic writes."""

from __future__ import annotations

import io
import os
from typing import Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imagesr.core.errors import disk_full
from imagesr.core.media.files import MAX_MEGAPIXELS, MediaError, PathOrBytes, check_pixels, open_regular, read_regular
from imagesr.core.outputs import claim_partial, remove_quietly


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow image -> HxWx3 uint8 RGB (16-bit scaled, alpha composited on white)."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.floor(a * (255.0 / peak) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        peak = 1.0 if a.max() <= 1.0 else 255.0
        a = np.clip(np.floor(a * (255.0 / peak) + 0.5), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.asarray(img, dtype=np.uint8).copy()


def decode_image(source: PathOrBytes, name: Optional[str] = None,
                 max_megapixels: Optional[float] = MAX_MEGAPIXELS) -> np.ndarray:
    """Decode an image file (path or encoded bytes) to HxWx3 uint8 RGB.

    Only a regular file is read (:func:`~imagesr.core.media.files.open_regular`), and only up to its
    size; the header's size is checked against ``max_megapixels`` (None: no budget) before the
    pixels are decoded.

    Raises:
      MediaError: missing, empty, special, corrupt or truncated file, or a frame over the
      pixel budget (the message names it).
    """
    label = name or (source if not isinstance(source, bytes) else "<bytes>")
    data = source if isinstance(source, bytes) else read_regular(source)
    if not data:
        raise MediaError(label, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            check_pixels(label, *img.size, max_megapixels)
            img.load()  # forces full decode: truncated data fails here, not later
            return to_rgb8(img)
    except UnidentifiedImageError:
        raise MediaError(label, "not an image Pillow can identify (corrupt or unsupported format)") from None
    except Image.DecompressionBombError as e:
        raise MediaError(label, f"refused by Pillow: {e}") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, MediaError):
            raise
        raise MediaError(label, f"corrupt or truncated image ({e})") from None


def has_alpha(path: str) -> bool:
    """Whether an image file has transparency (which decoding composites on white)."""
    try:
        with open_regular(path) as f, Image.open(f) as img:
            return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    except (OSError, UnidentifiedImageError, MediaError):
        return False


def image_size(path: str) -> tuple:
    """(width, height) from the header only, without decoding pixels."""
    try:
        with open_regular(path) as f, Image.open(f) as img:
            return img.size
    except (OSError, UnidentifiedImageError) as e:
        raise MediaError(path, f"cannot read image header ({e})") from None


def write_image(path: str, image: np.ndarray, quality: Optional[int] = None) -> None:
    """Write an RGB uint8 image atomically: under a temporary name of this call's own
    (:func:`imagesr.core.outputs.claim_partial`), renamed when complete, removed on failure.
    ``quality``: the encoder's (JPEG, WebP), 1-100."""
    tmp = claim_partial(path)
    try:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(tmp, **({"quality": quality} if quality else {}))
    except BaseException as e:
        remove_quietly(tmp)
        if isinstance(e, OSError) and disk_full(e):
            raise MediaError(path, f"cannot write: {disk_full(e)}") from None
        raise
    os.replace(tmp, path)


def animation_frames(path: str):
    """``(frames, durations_ms)`` of an animated GIF or WebP (every frame, composed as shown,
    8-bit RGB), or None for a still image. Durations of 10 ms or less count as 100 ms, as
    browsers show them."""
    try:
        with Image.open(path) as img:
            if not getattr(img, "is_animated", False) or getattr(img, "n_frames", 1) < 2:
                return None
            frames, durations = [], []
            for i in range(img.n_frames):
                img.seek(i)
                img.load()  # WebP says a frame's duration once it is loaded
                d = img.info.get("duration") or 0
                durations.append(int(d) if d and d > 10 else 100)
                frames.append(to_rgb8(img.convert("RGBA")))
            return frames, durations
    except (OSError, UnidentifiedImageError, ValueError, EOFError) as e:
        raise MediaError(path, f"corrupt or truncated animation ({e})") from None
