"""One module per subcommand, each with ``run(args) -> exit code``.

Shared here: writing outputs atomically (a failed run leaves no half-written
file) and printing text to a terminal or a pipe.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from ..errors import ExplainError


def write_atomic(path: str | Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` all at once: a temporary file, then a rename."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ExplainError(str(path), f"the directory {str(directory)!r} does not exist")
    data = content.encode("utf-8") if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an output file is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def emit(text: str, output: str | None) -> None:
    """Print ``text`` to standard output, or write it to ``output``."""
    if output:
        write_atomic(output, text if text.endswith("\n") else text + "\n")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def use_color() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ
