"""The ``explain`` command: a thin shell over the library.

Each subcommand parses its arguments, calls one function of
``explain.commands.<name>`` and prints what it returns.  Nothing heavy is
imported before a subcommand runs, so ``explain --help`` is instant.

Exit codes: 0 success; 1 a check or verification found a mismatch; 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

FORMATS = ("text", "markdown", "latex", "typst", "json")
LANGS = ("en", "zh")


def _common(parser: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS, precision: int = 6) -> None:
    parser.add_argument("--format", "-f", choices=formats, default="text", help="output format (default: text)")
    parser.add_argument("--lang", choices=LANGS, default="en", help="language of the explanation (default: en)")
    parser.add_argument("--precision", "-p", type=int, default=precision, metavar="N",
                        help=f"significant digits shown (JSON always has full float64 values; default: {precision})")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of standard output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="explain",
        description="Gradients explained step by step: chain rule, graph, verification, training, worked solutions.",
        epilog="Exit codes: 0 success, 1 a check or verification found a mismatch, 2 bad input.",
    )
    parser.add_argument("--version", action="version", version="explain 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("grad", help="step-by-step chain rule for one expression")
    p.add_argument("expr", help='the expression, e.g. "sigmoid(w*x + b)"')
    p.add_argument("--wrt", default="", help="variables to differentiate with respect to, e.g. w,b (default: all)")
    p.add_argument("--at", default="", help="values of the variables, e.g. w=1,b=2,x=3")
    _common(p)

    p = sub.add_parser("solve", help="forward pass, backward pass, chain rule, verification, training")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("--pdf", metavar="OUT.pdf", help="also write the worked solution as a PDF")
    p.add_argument("--graph", metavar="OUT.svg", help="also draw the computation graph (svg, png, pdf or dot)")
    p.add_argument("--no-verify", action="store_true", help="skip the PyTorch verification")
    p.add_argument("--no-train", action="store_true", help="skip training even if [train] is present")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    _common(p)

    p = sub.add_parser("graph", help="draw the annotated computation graph")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("--highlight", metavar="NAME", help="emphasise every path from NAME to the loss")
    p.add_argument("--level", choices=("auto", "operation", "stage"), default="auto",
                   help="one node per operation, or one per stage/neuron (default: stage for networks)")
    _common(p, precision=4)

    p = sub.add_parser("verify", help="compare every value and gradient with PyTorch autograd and finite differences")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--tolerance", type=float, default=None, help="largest accepted absolute error")
    _common(p)  # latex/typst are accepted so that the message can point to `solve --format latex`

    p = sub.add_parser("train", help="gradient-descent training trajectory")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("--plot", metavar="FILE", help="write the loss curve (png, svg or pdf)")
    p.add_argument("--lr", metavar="RATES", help="learning rate(s), e.g. 0.01,0.05,1 (compared on one plot)")
    p.add_argument("--steps", type=int, help="number of steps (overrides the problem)")
    p.add_argument("--epochs", type=int, help="number of epochs (overrides the problem)")
    p.add_argument("--optimizer", choices=("gd", "sgd", "minibatch"), help="overrides the problem")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="number type of the training loop (float32 reproduces PyTorch's default)")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-sample gradient printout")
    _common(p)

    p = sub.add_parser("check", help="grade answers and diagnose mistakes")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("answers", nargs="+", help="answer file(s) (TOML)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: the precision written)")
    p.add_argument("--report", metavar="FILE.csv", help="write one row per student and item")
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel processes for many answer files")
    _common(p, formats=("text", "markdown", "json"))

    p = sub.add_parser("variants", help="randomized per-student problems with solutions and answer keys")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("-n", type=int, default=30, help="number of variants (default: 30)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output directory")
    p.add_argument("--no-pdf", action="store_true", help="skip the solution PDFs")
    p.add_argument("--lang", choices=LANGS, default="en")

    p = sub.add_parser("broadcast", help="explain a broadcast of two tensor shapes")
    p.add_argument("shapes", nargs=2, metavar="SHAPE", help='shapes such as "(3,)" "(3,1)"')
    _common(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _show_problem_warnings()
    try:
        command = import_module(f"explain.commands.{args.command}")
        return int(command.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - bad input is reported, not a traceback
        from .errors import ExplainError

        if isinstance(exc, ExplainError):
            print(f"explain: error: {exc}", file=sys.stderr)
            return 2
        raise


def _show_problem_warnings() -> None:
    """Warnings about a problem file go to standard error as one plain line."""
    import warnings

    from .placement import ProblemWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, ProblemWarning):
            print(f"explain: warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show


if __name__ == "__main__":
    raise SystemExit(main())
