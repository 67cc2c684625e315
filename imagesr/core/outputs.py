"""Writing outputs safely: temporary names that belong to this run, and one run per output.

* :func:`claim_partial` creates the temporary file or folder an output is written under, with
  a name unique to this run (``NAME.partial-<pid>-<random>.EXT``) and exclusively (it fails
  rather than reuse an existing path), so cleaning it up can never remove a file the run
  did not create, an input named like a temporary output included.
* :class:`OutputLock` holds ``.NAME.imagesr-lock`` beside a local output for the length of a
  run (``flock``: released by the kernel if the process dies), so a second run writing the
  same output is refused at once instead of both finishing and one file silently winning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import tempfile
from typing import Optional

from imagesr.core.errors import UserError


def cache_dir(*parts: str) -> str:
    """Where imagesr writes what it is not told to write elsewhere (samples, the demo, the
    default pipeline root): ``$IMAGESR_CACHE``, else ``~/.cache/imagesr``."""
    base = os.environ.get("IMAGESR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "imagesr")
    return os.path.join(base, *parts)


class OutputBusy(UserError):
    """Another imagesr run is writing the same output."""


# Temporary names this process created (claim_partial) and has not removed. One claimed a moment
# before Ctrl-C or SIGTERM arrives (a video writer between creating its file and starting its
# encoder) has no owner yet to remove it: remove_claimed does, after the interruption.
_claimed = set()


def fit_name(folder: str, stem: str, suffix: str, unique: bool = False) -> str:
    """``stem + suffix``, the stem cut so that the name fits the file system's limit on one name
    (``NAME_MAX``, 255 bytes on most): a legal output name must not be refused because of the
    suffix of its temporary name or lock. ``unique``: a cut stem gets a hash of the whole stem,
    so that two long names that share their start do not share the result."""
    try:
        limit = os.pathconf(folder or ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    whole = stem.encode()
    if len(whole) + len(suffix.encode()) <= limit:
        return stem + suffix
    tag = "-" + hashlib.sha1(whole).hexdigest()[:12] if unique else ""
    room = max(1, limit - len(suffix.encode()) - len(tag))
    return whole[:room].decode("utf-8", "ignore") + tag + suffix


def check_name_length(path: str) -> None:
    """Refuse, before any work, an output whose own name is longer than its file system takes
    (the rename into place at the end would fail)."""
    parent, name = os.path.split(os.path.abspath(path))
    if fit_name(parent, name, "") != name:
        raise UserError(f"{path}: the name is {len(name.encode())} bytes, longer than its file system takes")


def claim_partial(path: str, folder: bool = False) -> str:
    """Create and return the temporary name ``path`` is written under until complete:
    ``NAME.partial-<pid>-<hex>.EXT`` beside a file (the extension kept last, for the tools that
    pick a format by it), ``NAME.partial-<pid>-<hex>`` for a folder, ``NAME`` cut when the whole
    would be too long a name (:func:`fit_name`). Created exclusively."""
    root, ext = os.path.splitext(path) if not folder else (path, "")
    parent, stem = os.path.split(root)
    for _ in range(100):
        tmp = os.path.join(parent, fit_name(parent, stem, f".partial-{os.getpid()}-{secrets.token_hex(3)}{ext}"))
        _claimed.add(tmp)  # before it exists: an interruption right after creating it still finds it
        try:
            if folder:
                os.mkdir(tmp)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return tmp
        except FileExistsError:  # not ours: never to be removed
            _claimed.discard(tmp)
    raise OSError(errno.EEXIST, f"no free temporary name beside {path}")


def is_partial_of(name: str, target: str) -> bool:
    """Whether ``name`` (a base name) is one of :func:`claim_partial`'s names for ``target``."""
    root, ext = os.path.splitext(os.path.basename(target))
    m = re.fullmatch(r"(.*)\.partial-\d+-[0-9a-f]{6}" + re.escape(ext), name)
    return bool(m) and bool(m.group(1)) and root.startswith(m.group(1))


def remove_quietly(path: Optional[str]) -> None:
    """Remove a temporary file or folder this run created (missing is fine)."""
    import shutil

    if not path:
        return
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    _claimed.discard(path)


def remove_claimed() -> None:
    """Remove every temporary output this process claimed and still has (after Ctrl-C or
    SIGTERM, once the owners' own clean-up has run). One renamed into place is gone from its
    temporary name already, so nothing finished is touched."""
    for path in list(_claimed):
        remove_quietly(path)


class OutputLock:
    """``with OutputLock(path):`` holds the lock of one local output for a run.

    Raises :class:`OutputBusy` when another process holds it. The lock file is removed on
    release; one left by a killed process is taken over (the kernel released its lock)."""

    def __init__(self, path: str):
        path = os.path.abspath(path.rstrip("/" + os.sep) or path)
        self.path = path
        parent = os.path.dirname(path)
        self.lock_path = os.path.join(parent, fit_name(parent, f".{os.path.basename(path)}", ".imagesr-lock", unique=True))
        self.fd: Optional[int] = None

    def acquire(self) -> "OutputLock":
        while True:
            fd = os.open(self.lock_path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputBusy(f"{self.path}: another imagesr run is writing this output "
                                 f"(it holds {self.lock_path}); wait for it to finish or choose another output") from None
            try:  # the file may have been removed by its last holder between our open and lock
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return self
            os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.remove(self.lock_path)
        except FileNotFoundError:
            pass
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


@contextlib.contextmanager
def temporary_files_in(folder: str):
    """Within the block, this process's temporary files (Python's ``tempfile``: Keras's
    extracted archives, Beam's and TFX's own folders, TFX's build of the user module) go to
    ``folder``, so a run's leftovers stay in a place of its own (removed with it). The
    environment is left alone: the processes a run starts get their folders from it
    explicitly or leave nothing behind (tests/test_bad_input.py kills a patch job to check)."""
    os.makedirs(folder, exist_ok=True)
    saved = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield folder
    finally:
        tempfile.tempdir = saved


def resolve_link(path: str) -> str:
    """``path`` itself, or where it points when it is a symbolic link to a folder: an output
    named by a link to a folder is written into that folder (replaced there, the link kept),
    never swapped for the link itself at the end of a run."""
    path = os.path.abspath(path.rstrip("/" + os.sep) or path)
    return os.path.realpath(path) if os.path.islink(path) and os.path.isdir(path) else path


@contextlib.contextmanager
def folder_output(path: str, overwrite: bool, own: tuple, what: str):
    """Write a whole folder output (a model folder, say) the safe way: yields a temporary
    folder of this run's own beside ``path``, renamed to ``path`` when the block ends without
    an error (removed otherwise), under ``path``'s :class:`OutputLock`.

    ``path`` must be new, an empty folder, or, with ``overwrite``, a folder holding only the
    names in ``own`` (what such an output holds), which is then replaced whole, never merged
    into: nothing of an old output stays beside the new one. A file, a folder of other files,
    or an existing output without ``overwrite`` is refused with one line."""
    import shutil

    target = resolve_link(path)
    check_name_length(target)
    if os.path.exists(target) and not os.path.isdir(target):
        raise UserError(f"{path}: exists and is not a folder; give a folder for the {what}")
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise UserError(f"{path}: its folder {parent} does not exist")
    with OutputLock(target):
        entries = sorted(os.listdir(target)) if os.path.isdir(target) else []
        foreign = [e for e in entries if e not in own]
        if foreign:
            raise UserError(f"{path} holds files that are not part of a {what} ({', '.join(foreign[:3])}"
                            f"{', ...' if len(foreign) > 3 else ''}): choose a new or empty folder")
        if entries and not overwrite:
            raise UserError(f"{path} already holds a {what} ({', '.join(entries[:3])}); use another folder or "
                            "--overwrite to replace it")
        try:
            tmp = claim_partial(target, folder=True)
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
        try:
            yield tmp
        except BaseException:
            remove_quietly(tmp)
            raise
        old = None
        try:
            if entries:  # the old output moves aside whole, then the new one takes its name
                old = claim_partial(target, folder=True)
                os.replace(target, old)
            os.replace(tmp, target)  # onto a missing or an empty folder
        except BaseException:
            if old and not os.path.exists(target):
                os.replace(old, target)  # the old output back where it was
                old = None
            remove_quietly(tmp)
            raise
        finally:
            if old:
                shutil.rmtree(old, ignore_errors=True)
