"""One file-system layer for local paths and ``gs://``, for every stage after the Beam job:
the trainer's inputs and exports, the evaluator's models, metrics and report, the validation
gate's anomalies, the pipeline's runs.

Local paths go to ``os``; ``gs://bucket/key`` goes to google-cloud-storage, which honours
``STORAGE_EMULATOR_HOST`` (a local GCS-protocol server), so the same code is tested against a
real server without credentials. No TensorFlow, Beam or TFX here: the training code uses it on
a GPU machine that has none of them (where ``gs://`` needs ``google-cloud-storage``). Object
stores have no folders: a "folder" is a prefix, and writing a tree uploads its files.

Keras, ffmpeg and TensorFlow read local files, so models and records on ``gs://`` are staged
through a local temporary folder (:func:`local_copy`, :func:`local_tree`, :func:`staged_folder`).

:class:`FileSystem` is the interface that reading sources needs; :data:`LOCAL_OR_GCS` implements
it with this module, and the Beam writer's ``BeamFS`` with Beam's FileSystems (any scheme Beam
has). A path is remote when it has a URL scheme (``gs://``, ``s3://``, ...: :func:`is_remote`);
this module serves ``gs://`` and says so in one line for any other scheme.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob as globlib
import io
import os
import shutil
import tempfile
from typing import BinaryIO, ContextManager, Iterator, List, Protocol

from imagesr.core.errors import UserError
from imagesr.core.media.files import url_scheme

_client = None


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL (``scheme://...``) rather than a local path."""
    return url_scheme(path) is not None


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return "/".join([base.rstrip("/")] + [p.strip("/") for p in parts])
    return os.path.join(base, *parts)


def _split(path: str):
    if url_scheme(path) != "gs":
        raise UserError(f"{path}: {url_scheme(path)}:// is not supported here (local paths and gs:// are)")
    bucket, _, key = path[len("gs://"):].partition("/")
    return bucket, key


def _bucket(path: str):
    global _client
    _split(path)  # a gs:// path, or one line
    if _client is None:
        try:
            from google.cloud import storage
        except ImportError:
            raise UserError(f"{path}: gs:// paths need google-cloud-storage (pip install google-cloud-storage)") from None
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            _client = storage.Client(project="imagesr", credentials=AnonymousCredentials())
        else:
            _client = storage.Client()
    return _client.bucket(_split(path)[0])


def exists(path: str) -> bool:
    """A file, a folder, or (gs://) an object or a prefix with objects under it."""
    if not is_remote(path):
        return os.path.exists(path)
    bucket, key = _split(path)
    b = _bucket(path)
    if key and b.blob(key).exists():
        return True
    return any(True for _ in b.list_blobs(prefix=key.rstrip("/") + "/" if key else "", max_results=1))


def isfile(path: str) -> bool:
    if not is_remote(path):
        return os.path.isfile(path)
    _, key = _split(path)
    return bool(key) and _bucket(path).blob(key).exists()


def isdir(path: str) -> bool:
    """A local folder, or (gs://) a prefix with objects under it (object stores have no folders)."""
    if not is_remote(path):
        return os.path.isdir(path)
    bucket, key = _split(path)
    prefix = key.rstrip("/") + "/" if key else ""
    return any(True for _ in _bucket(path).list_blobs(prefix=prefix, max_results=1))


def open_binary(path: str) -> BinaryIO:
    """``path`` opened for reading bytes: a local regular file only (a FIFO would block, a device
    never end), a gs:// object read whole (sources are single images and frames)."""
    if not is_remote(path):
        from imagesr.core.media.files import open_regular

        return open_regular(path)
    return io.BytesIO(read_bytes(path))


def list_files(folder: str) -> List[str]:
    """Every file under ``folder``, recursively, sorted."""
    if not is_remote(folder):
        out = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            out.extend(os.path.join(dirpath, f) for f in sorted(filenames))
        return out
    bucket, key = _split(folder)
    prefix = key.rstrip("/") + "/" if key else ""
    return sorted(f"gs://{bucket}/{b.name}" for b in _bucket(folder).list_blobs(prefix=prefix)
                  if not b.name.endswith("/"))


def glob(pattern: str) -> List[str]:
    """Files matching ``pattern`` (``*``, ``?``, ``[..]``; on gs:// ``*`` stays within a level)."""
    if not is_remote(pattern):
        return sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p))
    bucket, key = _split(pattern)
    fixed = key.split("*")[0].split("?")[0].split("[")[0]
    names = (b.name for b in _bucket(pattern).list_blobs(prefix=fixed))
    levels = key.count("/")
    return sorted(f"gs://{bucket}/{n}" for n in names
                  if n.count("/") == levels and fnmatch.fnmatchcase(n, key))


def read_bytes(path: str) -> bytes:
    if not is_remote(path):
        with open(path, "rb") as f:
            return f.read()
    _, key = _split(path)
    return _bucket(path).blob(key).download_as_bytes()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def write_bytes(path: str, data: bytes) -> None:
    """Write a whole file: locally under a temporary name, then renamed (never half a file);
    on gs:// an object upload is all or nothing."""
    if not is_remote(path):
        from imagesr.core.outputs import claim_partial, remove_quietly

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = claim_partial(path)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            remove_quietly(tmp)
            raise
        return
    _, key = _split(path)
    _bucket(path).blob(key).upload_from_string(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def makedirs(path: str) -> None:
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)


def copy_tree(src: str, dst: str) -> None:
    """Copy every file under ``src`` to the same relative place under ``dst`` (either may be
    local or gs://)."""
    for f in list_files(src):
        rel = os.path.relpath(f, src) if not is_remote(src) else f[len(src.rstrip("/")) + 1:]
        target = join(dst, *rel.split("/")) if is_remote(dst) else os.path.join(dst, rel)
        if not is_remote(f) and not is_remote(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(f, target)
        elif not is_remote(f):
            _bucket(target).blob(_split(target)[1]).upload_from_filename(f)
        elif not is_remote(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            _bucket(f).blob(_split(f)[1]).download_to_filename(target)
        else:
            write_bytes(target, read_bytes(f))


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
    """A local path with ``path``'s content (itself when local; a temporary download otherwise)."""
    if not is_remote(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="imagesr-fs-") as tmp:
        local = os.path.join(tmp, os.path.basename(path.rstrip("/")))
        _bucket(path).blob(_split(path)[1]).download_to_filename(local)
        yield local


@contextlib.contextmanager
def local_tree(path: str) -> Iterator[str]:
    """A local folder (or file) with ``path``'s content, staged when remote (a model folder,
    a ``.keras`` file)."""
    if not is_remote(path):
        yield path
        return
    if isfile(path):
        with local_copy(path) as local:
            yield local
        return
    with tempfile.TemporaryDirectory(prefix="imagesr-fs-") as tmp:
        local = os.path.join(tmp, os.path.basename(path.rstrip("/")) or "tree")
        copy_tree(path, local)
        if not os.path.isdir(local):
            raise UserError(f"{path}: no such file or folder")
        yield local


@contextlib.contextmanager
def staged_folder(path: str) -> Iterator[str]:
    """A local folder to write into; when ``path`` is remote its files are uploaded there
    when the block ends without an error (nothing is uploaded from a failed block)."""
    if not is_remote(path):
        os.makedirs(path, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="imagesr-fs-") as tmp:
        yield tmp
        copy_tree(tmp, path)


class FileSystem(Protocol):
    """What reading sources needs of a file system (``imagesr.core.sources``)."""

    def is_remote(self, path: str) -> bool: ...
    def isdir(self, path: str) -> bool: ...
    def exists(self, path: str) -> bool: ...
    def list_files(self, folder: str) -> List[str]: ...
    def match(self, pattern: str) -> List[str]: ...
    def open(self, path: str) -> BinaryIO: ...
    def local_copy(self, path: str) -> ContextManager[str]: ...


class LocalOrGcs:
    """:class:`FileSystem` over this module: local paths and gs://."""

    is_remote = staticmethod(is_remote)
    isdir = staticmethod(isdir)
    exists = staticmethod(exists)
    list_files = staticmethod(list_files)
    match = staticmethod(glob)
    open = staticmethod(open_binary)
    local_copy = staticmethod(local_copy)


LOCAL_OR_GCS: FileSystem = LocalOrGcs()
