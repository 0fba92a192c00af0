"""Reading input files and writing output files safely.

The rules (docs/limits.md tells users the same):

- **Regular files only.**  An output path that exists must be a regular file;
  a directory, a device (``/dev/null``), a FIFO or a socket is refused, never
  replaced.  An input must be a regular file too: a FIFO is refused instead of
  blocking forever.
- **Symbolic links are refused as outputs.**  Writing goes through a temporary
  file and a rename, which would replace the link itself; following it instead
  would let a link planted in a shared folder redirect a write (run as root:
  anywhere).  The user names the real file.
- **The output you name is created, never the folders above it.**  A missing
  parent folder is an error, for every command (``variants -o DIR`` creates
  ``DIR`` itself, which is the output it names).
- **All outputs or none.**  Inside :func:`all_or_none` (the CLI runs every
  command in one), each file is first written to a temporary file beside its
  target; only when the command has finished are they all renamed into place.
  A failure or a signal on the way removes the temporaries: no output is left
  half-written, and no first output is left without the second.

Every problem is an :class:`~explain.errors.ExplainError` naming the option and
the path.  This module is underneath everything (it imports only ``errors``), so
commands, renderers and domain code may all use it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ExplainError

#: Longest file name (one path component) accepted, in bytes, where the system does not say.
NAME_MAX = 255


# -- inputs ---------------------------------------------------------------------------------
def read_input(path: str | Path) -> str:
    """The text of an input file, refusing what is not a regular file.

    The file is opened without blocking, so that a FIFO is refused at once
    instead of waiting for a writer that never comes.
    """
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ExplainError(source, "no such file") from None
    except OSError as exc:
        raise ExplainError(source, f"cannot read the file ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ExplainError(source, f"is {_kind(info.st_mode)}, not a regular file")
        try:
            data = handle.read()
        except OSError as exc:
            raise ExplainError(source, f"cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExplainError(source, f"cannot read the file ({exc})") from None


# -- outputs --------------------------------------------------------------------------------
def _where(path: str | Path, option: str | None) -> str:
    return f"{option} {path}" if option else str(path)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def _refuse_existing(path: Path, where: str) -> None:
    """Refuse a path that exists and is anything but a regular file (a link included)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ExplainError(where, f"cannot write here ({exc.strerror or exc})") from None
    if stat.S_ISLNK(info.st_mode):
        raise ExplainError(where, "is a symbolic link; explain does not write through links "
                                  "(name the file it points to, or remove the link)")
    if not stat.S_ISREG(info.st_mode):
        raise ExplainError(where, f"is {_kind(info.st_mode)}; explain writes only regular files")


def check_output(path: str | Path, option: str | None = None) -> Path:
    """Check that ``path`` can receive an output file; returns it as a Path.

    Called for every output before any work (so a bad second path fails before
    the first file is written), and again just before writing.
    """
    where = _where(path, option)
    if not str(path):
        raise ExplainError(where, "the file name is empty")
    target = Path(path)
    if str(path).endswith(os.sep) or target.name in ("", ".", ".."):
        raise ExplainError(where, "names a directory; give a file name")
    directory = target.parent
    try:
        folder = os.stat(directory)
    except FileNotFoundError:
        raise ExplainError(where, f"the directory {str(directory)!r} does not exist "
                                  "(explain does not create directories)") from None
    except OSError as exc:
        raise ExplainError(where, f"cannot use the directory {str(directory)!r} ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(folder.st_mode):
        raise ExplainError(where, f"{str(directory)!r} is not a directory")
    limit = _name_max(directory)
    if len(os.fsencode(target.name)) > limit:
        raise ExplainError(where, f"the file name is too long ({len(os.fsencode(target.name))} bytes; "
                                  f"at most {limit})")
    _refuse_existing(target, where)
    return target


def check_output_directory(path: str | Path, option: str | None = None) -> Path:
    """Check that ``path`` is an existing directory, or can be created as one (its parent exists)."""
    where = _where(path, option)
    target = Path(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        parent = target.parent
        if not parent.is_dir():
            raise ExplainError(where, f"the directory {str(parent)!r} does not exist "
                                      "(explain creates the directory you name, not the ones above it)") from None
        if len(os.fsencode(target.name)) > _name_max(parent):
            raise ExplainError(where, "the directory name is too long")
        return target
    except OSError as exc:
        raise ExplainError(where, f"cannot use this directory ({exc.strerror or exc})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ExplainError(where, f"is {_kind(info.st_mode)}, not a directory")
    return target


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return NAME_MAX


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0666 less the umask."""
    try:
        return os.stat(target).st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@dataclass
class _Pending:
    temporary: str
    target: Path
    where: str


@dataclass
class _Batch:
    pending: list[_Pending] = field(default_factory=list)
    created_dirs: list[Path] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)


_batches: list[_Batch] = []


def _stage(target: Path, data: bytes, where: str) -> _Pending:
    """Write ``data`` to a temporary file beside ``target`` (short name: long targets still fit)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".explain-", suffix=".part")
    except OSError as exc:
        raise ExplainError(where, f"cannot write here ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _mode_for(target))  # mkstemp makes 0600; an output is an ordinary file
    except BaseException as exc:
        _remove(tmp)
        if isinstance(exc, OSError):
            raise ExplainError(where, f"cannot write the file ({exc.strerror or exc})") from None
        raise
    return _Pending(tmp, target, where)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _commit(pending: list[_Pending]) -> None:
    """Rename every temporary into place, checking each target once more just before."""
    for i, p in enumerate(pending):
        try:
            _refuse_existing(p.target, p.where)
            os.replace(p.temporary, p.target)
        except BaseException as exc:
            for rest in pending[i:]:
                _remove(rest.temporary)
            if isinstance(exc, OSError):
                raise ExplainError(p.where, f"cannot write the file ({exc.strerror or exc})") from None
            raise


def write_atomic(path: str | Path, content: str | bytes, option: str | None = None) -> None:
    """Write ``content`` to ``path``: a temporary file, then a rename.

    Inside :func:`all_or_none` the rename waits until the whole command has
    succeeded.  ``option`` (such as ``"--pdf"``) names the path in errors.
    """
    where = _where(path, option)
    target = check_output(path, option)
    data = content.encode("utf-8") if isinstance(content, str) else content
    pending = _stage(target, data, where)
    if _batches:
        _batches[-1].pending.append(pending)
    else:
        _commit([pending])


def make_output_directory(path: str | Path, option: str | None = None) -> Path:
    """Create the directory ``path`` if missing (not its parents); removed again if the batch fails."""
    target = check_output_directory(path, option)
    try:
        os.mkdir(target)
    except FileExistsError:
        return target
    except OSError as exc:
        raise ExplainError(_where(path, option), f"cannot create the directory ({exc.strerror or exc})") from None
    if _batches:
        _batches[-1].created_dirs.append(target)
    return target


def after_commit(action: Callable[[], None]) -> None:
    """Run ``action`` once the files are in place (at once outside :func:`all_or_none`)."""
    if _batches:
        _batches[-1].after.append(action)
    else:
        action()


@contextlib.contextmanager
def all_or_none() -> Iterator[None]:
    """Hold back every file written inside until the block ends without an exception.

    Then all are renamed into place; on an exception (a signal included) every
    temporary is removed and directories created for the batch are removed
    when empty.
    """
    batch = _Batch()
    _batches.append(batch)
    try:
        yield
    except BaseException:
        _batches.remove(batch)
        _discard(batch)
        raise
    _batches.remove(batch)
    try:
        _commit(batch.pending)
    except BaseException:
        _discard(batch)
        raise
    for action in batch.after:
        action()


def _discard(batch: _Batch) -> None:
    for p in batch.pending:
        _remove(p.temporary)
    for directory in reversed(batch.created_dirs):
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # only when empty: files that were there before stay


__all__ = ["all_or_none", "after_commit", "check_output", "check_output_directory", "make_output_directory",
           "read_input", "write_atomic"]
