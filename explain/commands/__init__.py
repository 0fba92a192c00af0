"""One module per subcommand, each with ``run(args) -> exit code``.

Shared here: printing text to a terminal, a pipe or a file.  Files are written
by :mod:`explain.files` (regular files only, all outputs or none).
"""

from __future__ import annotations

import os
import sys

from ..files import write_atomic
from ..sanitize import printable


def emit(text: str, output: str | None, colored: bool = False) -> None:
    """Print ``text`` to standard output, or write it to ``output`` (``--output``).

    Control characters from user text are shown as symbols; ``colored`` text
    carries our own colour codes and was made printable piece by piece.
    """
    if not colored:
        text = printable(text)
    if not text.endswith("\n"):
        text += "\n"
    if output:
        write_atomic(output, text, option="--output")
    else:
        sys.stdout.write(text)


def use_color() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


__all__ = ["emit", "use_color", "write_atomic"]
