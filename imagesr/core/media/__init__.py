"""Media in and out: images (Pillow), videos (ffmpeg pipes) and frame folders, as uint8 RGB
arrays (the one decoder of every stage) or, for the live route, planar Y'CbCr frames.

* :mod:`~imagesr.core.media.images`: any image -> 8-bit RGB (grayscale, palette, CMYK, 16-bit,
  alpha composited on white, EXIF orientation applied); atomic writes.
* :mod:`~imagesr.core.media.probe`: what a video says about itself (size after rotation, rates,
  colour tags, the stream that is decoded).
* :mod:`~imagesr.core.media.decode`: frames from a video (one at a time through a pipe) or a
  folder of frames; truncated and corrupt files raise instead of passing short.
* :mod:`~imagesr.core.media.encode`: :class:`VideoWriter`, streaming video out (a file, atomic; standard
  output; a URL), converted and tagged with its colours (HDR10 included).
* :mod:`~imagesr.core.media.streams`: passthrough of audio, subtitles, chapters and the rest, or one
  line for what a container cannot take.

A corrupt, truncated or empty file, a special file (a FIFO, a device: only regular files are
read) or a frame over the pixel budget (:data:`MAX_MEGAPIXELS`) raises :class:`MediaError`
naming the file.
"""

from imagesr.core.media.decode import (
    VideoDecoder,
    frame_number_gaps,
    iter_folder_frames,
    iter_frames,
    iter_video_frames,
    list_frames,
)
from imagesr.core.media.encode import ColourSpec, VideoWriter, encode_video, is_stream_target
from imagesr.core.media.files import (
    IMAGE_EXTENSIONS,
    MAX_MEGAPIXELS,
    VIDEO_EXTENSIONS,
    FFmpegNotFound,
    MediaError,
    PathOrBytes,
    check_pixels,
    ffmpeg_binary,
    ffmpeg_path,
    is_capture_device,
    is_image_path,
    is_live,
    is_stream,
    is_video_path,
    natural_key,
    not_regular,
    open_regular,
    read_regular,
)
from imagesr.core.media.images import animation_frames, decode_image, has_alpha, image_size, to_rgb8, write_image
from imagesr.core.media.probe import (
    HdrMetadata,
    StreamInfo,
    VideoInfo,
    hdr_metadata,
    keyframe_times,
    parse_banner,
    probe_video,
)

__all__ = ["IMAGE_EXTENSIONS", "MAX_MEGAPIXELS", "VIDEO_EXTENSIONS", "ColourSpec", "FFmpegNotFound", "HdrMetadata",
           "MediaError", "PathOrBytes", "StreamInfo", "VideoDecoder", "VideoInfo", "VideoWriter", "animation_frames",
           "check_pixels", "decode_image", "encode_video", "ffmpeg_binary", "ffmpeg_path", "frame_number_gaps",
           "has_alpha", "hdr_metadata", "image_size", "is_capture_device", "is_image_path", "is_live", "is_stream",
           "is_stream_target", "is_video_path", "iter_folder_frames", "iter_frames", "iter_video_frames",
           "keyframe_times", "list_frames", "natural_key", "not_regular", "open_regular", "parse_banner",
           "probe_video", "read_regular", "to_rgb8", "write_image"]
