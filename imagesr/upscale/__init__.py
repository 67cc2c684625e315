"""Live upscaling of a video, a frame folder or an image (``imagesr upscale``).

* :mod:`~imagesr.upscale.options`: the arguments, checked before anything loads;
* :mod:`~imagesr.upscale.inputs`: what is upscaled (a probed video, a live stream read once,
  a folder, an animation, an image);
* :mod:`~imagesr.upscale.frames`: :class:`FrameProcessor`, frames in and frames out around the
  model (padding to its input multiple, tiles covering its receptive field, the exact output
  size, the planar Y'CbCr route on an accelerator), and loading a model by name or path;
* :mod:`~imagesr.upscale.sinks`: where frames go (video file or stream, PNG folder, image);
* :mod:`~imagesr.upscale.pipeline`: :func:`upscale`, decode / infer / encode overlapped, file
  mode or real time (drops counted, latency measured);
* :mod:`~imagesr.upscale.resume`: ``--resume``, keyframe-aligned segments joined at the end;
* :mod:`~imagesr.upscale.batch`: a folder of videos in, a folder out.

The model is loaded lazily through :func:`imagesr.training.serving.load_upscaler` (importing
this package loads neither TensorFlow nor Keras). Output goes to a temporary name of the run's
own beside the target and is renamed only once complete (a stream output is written as it
goes); a run holds the output's lock (:class:`imagesr.core.outputs.OutputLock`), so a second run
to the same output is refused.
"""

from imagesr.upscale.frames import FrameProcessor, load_model, tiled
from imagesr.upscale.inputs import Source, open_source
from imagesr.upscale.options import DEFAULT_MODEL, UpscaleError, output_kind, parse_size, target_size
from imagesr.upscale.pipeline import UpscaleResult, upscale
from imagesr.upscale.sinks import FolderSink, ImageSink, VideoSink

__all__ = ["DEFAULT_MODEL", "FolderSink", "FrameProcessor", "ImageSink", "Source", "UpscaleError", "UpscaleResult",
           "VideoSink", "load_model", "open_source", "output_kind", "parse_size", "target_size", "tiled", "upscale"]
