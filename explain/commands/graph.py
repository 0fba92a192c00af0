"""``explain graph PROBLEM.toml -o OUT.svg|png|pdf|dot [--highlight w1] [--level …] [--blank]``.

Exit codes: 0 when the drawing was written — also when Graphviz is missing and
the DOT source was written instead (a warning on standard error says where and
how to install Graphviz: the DOT is the whole drawing, so nothing is lost and a
script can finish it with ``dot``); 2 for bad input (unknown file, node name or
output format), with no file left behind.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..derivation import Derivation


def run(args: argparse.Namespace) -> int:
    """Load, derive, draw; print the path written."""
    from ..derivation import derive
    from ..problem import load

    if args.format != "text":
        from ..errors import ExplainError
        from ..i18n import Messages

        # The drawing's format comes from the file name; --format would be silently ignored.
        raise ExplainError(f"--format {args.format}", Messages(args.lang)("graph_format_option"))
    output = Path(args.output) if args.output else Path(Path(args.problem).stem + ".svg")
    check_graph_path(output, "--output", args.lang)  # fail before the work, not after
    from ..render.matrixform import matrix_of

    problem = load(args.problem)
    derivation = derive(problem)
    matrix = matrix_of(problem) if args.level in ("auto", "tensor") else None
    return draw(derivation, output, highlight=args.highlight, level=args.level,
                precision=args.precision, lang=args.lang, blank=args.blank, matrix=matrix)


def check_graph_path(output: str | Path, option: str, lang: str = "en") -> None:
    """A drawable suffix and a writable regular-file path, checked before any work."""
    from ..errors import ExplainError
    from ..files import check_output
    from ..i18n import Messages
    from ..render.dot import FORMATS

    output = Path(output)
    if output.suffix.lower().lstrip(".") not in FORMATS:
        raise ExplainError(f"{option} {output}", Messages(lang)("graph_unknown_format", suffix=output.suffix or "(none)"))
    check_output(output, option)


def draw(
    derivation: Derivation, output: str | Path, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en", blank: bool = False, matrix: object = None,
) -> int:
    """Write the graph and tell the user where (shared by ``graph`` and ``solve --graph``).

    Prints the path written to standard error and, when Graphviz is missing,
    the install hint to standard error.  Returns the exit code (0).
    """
    from ..files import after_commit
    from ..i18n import Messages
    from ..render.dot import GraphvizMissingWarning, write_graph
    from ..sanitize import printable

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GraphvizMissingWarning)
        written = write_graph(derivation, output, highlight=highlight, level=level, precision=precision, lang=lang,
                              blank=blank, matrix=matrix)
    for w in caught:
        if issubclass(w.category, GraphvizMissingWarning):
            print(f"explain: warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    # On stderr, so that `solve --graph g.svg --format json` still prints pure JSON;
    # once the file is in place (the CLI holds every output until the command succeeds).
    done = printable(Messages(lang)("graph_written", path=written))
    after_commit(lambda: print(done, file=sys.stderr))
    return 0
