"""Batch mode: a folder of videos in, a folder of upscaled videos out, one line per file.

A file that fails (corrupt, truncated, a codec ffmpeg cannot decode) is counted and named
with its reason, and the others go on; a video whose output is already there is skipped, so
running the command again after an interruption continues the batch (with ``--resume``, the
file that was cut off continues too). The model loads once for the whole folder.
"""

from __future__ import annotations

import os
import sys
import time

from imagesr.core.errors import UserError
from imagesr.core.media import is_image_path, is_video_path, natural_key
from imagesr.upscale.frames import load_model
from imagesr.upscale.options import H264_CONTAINERS, UpscaleError


def is_batch(path: str) -> bool:
    """A folder holding videos and no image frames."""
    if not os.path.isdir(path):
        return False
    names = os.listdir(path)
    return any(is_video_path(n) for n in names) and not any(is_image_path(n) for n in names)


def output_name(name: str, codec: str) -> str:
    """The input's own name, or ``.mkv`` when its container cannot hold H.264 (``.webm``, ``.mpg``)."""
    stem, ext = os.path.splitext(name)
    return name if codec != "libx264" or ext.lower() in H264_CONTAINERS else stem + ".mkv"


def upscale_folder(folder: str, out_folder: str, stream=None, **options) -> int:
    """Upscale every video in ``folder`` into ``out_folder``; returns the exit status (0: all
    upscaled or already there, 1: some failed)."""
    from imagesr.upscale.pipeline import upscale

    stream = stream or sys.stdout
    if os.path.exists(out_folder) and not os.path.isdir(out_folder):
        raise UpscaleError(f"{out_folder}: is a file; a folder of videos needs an output folder")
    if os.path.realpath(out_folder) == os.path.realpath(folder):
        raise UpscaleError(f"{out_folder}: the output folder is the input folder; choose another")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out_folder))):
        raise UpscaleError(f"cannot write {out_folder}: its folder does not exist")
    videos = sorted((n for n in os.listdir(folder) if is_video_path(n) and os.path.isfile(os.path.join(folder, n))),
                    key=natural_key)
    codec = options.get("codec") or "libx264"
    model = options.pop("model", None)
    if model is None or isinstance(model, str):
        model = load_model(model, options.get("scale"))  # once for the whole folder
    os.makedirs(out_folder, exist_ok=True)
    counts = {"upscaled": 0, "failed": 0, "skipped": 0}
    t0 = time.perf_counter()
    for i, name in enumerate(videos, 1):
        src, dst = os.path.join(folder, name), os.path.join(out_folder, output_name(name, codec))
        head = f"[{i}/{len(videos)}] {name}"
        if os.path.exists(dst):
            counts["skipped"] += 1
            print(f"{head}: skipped, {dst} is already there", file=stream, flush=True)
            continue
        try:
            result = upscale(src, dst, model=model, progress=None, **options)
        except UserError as e:
            counts["failed"] += 1
            print(f"{head}: failed: {e}", file=stream, flush=True)
            continue
        counts["upscaled"] += 1
        print(f"{head}: {result.summary()}", file=stream, flush=True)
    print(f"batch: {counts['upscaled']} upscaled, {counts['failed']} failed, {counts['skipped']} skipped "
          f"(already there) of {len(videos)} videos in {time.perf_counter() - t0:.1f} s -> {out_folder}",
          file=stream, flush=True)
    return 1 if counts["failed"] else 0
