"""Files written so that a crash or a full disk never leaves half of one: :func:`atomic_write`
and :func:`write_text`. Imports nothing from physgrad but input validation, so every layer
(config, training, experiments, report) may use it."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from physgrad._validation import short_text


class WriteError(OSError):
    """A file could not be written (disk full, file-size limit, permissions): the file it
    would have replaced is unchanged, and no temp file is left behind."""

    def __str__(self) -> str:
        return str(self.strerror)


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename over ``path``: a crash never leaves half a file.

    The temp file is ``.<name>.tmp`` beside ``path``: a writer killed mid-write (SIGKILL)
    leaves at most that one file, which the next write of ``path`` reuses, so temps never
    accumulate. Concurrent writers of the same file take turns (an ``flock`` on the temp
    file). New files get the process umask's permissions.

    Raises:
        WriteError: the write failed (e.g. ``ENOSPC``, ``EFBIG``); ``path`` keeps its
            previous content and the temp file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with _claimed(tmp):
        try:
            write(str(tmp))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            # torch.save reports a short write as RuntimeError ("unexpected pos", "file write
            # failed"), not OSError
            if not isinstance(exc, OSError | RuntimeError):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
                short_text(exc)
            raise WriteError(
                getattr(exc, "errno", None) or errno.EIO,
                f"cannot write {str(path)!r} ({reason}); its previous version, if any, is kept",
                str(path),
            ) from None


@contextlib.contextmanager
def _claimed(tmp: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the temp file ``tmp`` (created if missing; a stale one
    left by a killed writer is reused). A second writer of the same file waits; when the
    first renames the temp into place the second claims a new one (it checks that the name
    still refers to the file it locked). Without ``flock`` (not POSIX, some network file
    systems) writes are not serialised."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    while True:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = os.stat(tmp).st_ino
        except FileNotFoundError:  # renamed into place by the writer we waited for
            os.close(fd)
            continue
        except OSError:  # no flock on this file system
            os.close(fd)
            yield
            return
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def write_text(path: Path | str, text: str) -> Path:
    """:func:`atomic_write` of ``text`` (UTF-8) to ``path``; returns ``path``."""
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return path
