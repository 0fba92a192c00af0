"""The ``explain`` command: a thin shell over the library.

Each subcommand parses its arguments, calls one function of
``explain.commands.<name>`` and prints what it returns.  Nothing heavy is
imported before a subcommand runs, so ``explain --help`` is instant.

Exit codes (docs/limits.md): 0 success; 1 a check or verification found a
mismatch; 2 bad input; 3 an internal error (a bug: the message asks for a
report, ``--debug`` shows the traceback); 130 and 143 interrupted by SIGINT
or SIGTERM.  Every command runs inside :func:`explain.files.all_or_none`, so
an error or a signal leaves no output file behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from importlib import import_module
from types import FrameType

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
        epilog="Exit codes: 0 success, 1 a check or verification found a mismatch, 2 bad input, "
               "3 internal error (please report it), 130/143 interrupted (docs/limits.md).",
    )
    parser.add_argument("--version", action="version", version="explain 0.1.0")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("grad", help="step-by-step chain rule for one expression")
    p.add_argument("expr", help='the expression, e.g. "sigmoid(w*x + b)"; it may start with "-" ("-x*w")')
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
    p.add_argument("--sections", metavar="LIST",
                   help="show only these parts, comma-separated: forward, local, backward, paths, delta, "
                        "verification, training (default: all; the givens and the gradients are always shown)")
    p.add_argument("--handout", action="store_true",
                   help="the problem sheet: the givens, the stages and what to compute, without the solution")
    _common(p)

    p = sub.add_parser("graph", help="draw the annotated computation graph")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("--highlight", metavar="NAME", help="emphasise every path from NAME to the loss")
    p.add_argument("--level", choices=("auto", "operation", "stage", "layer", "tensor"), default="auto",
                   help="one node per operation, per stage/neuron, per layer, or per vector/matrix "
                        "(default: tensor for problems with vectors or matrices, stage for networks, "
                        "layer for big ones)")
    p.add_argument("--blank", action="store_true",
                   help="a handout: the structure and the names, blanks instead of numbers")
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
    p.add_argument("--update", metavar="RULE",
                   help="update rule: plain, momentum, nesterov, adagrad, rmsprop, adam, adamw (overrides the problem)")
    p.add_argument("--compare", metavar="RULES",
                   help="train once per update rule, e.g. adam,momentum,plain (compared on one plot)")
    p.add_argument("--trajectory", metavar="FILE",
                   help="draw the parameters' path on the loss's contours (two-parameter problems; png, svg or pdf)")
    p.add_argument("--explain-steps", metavar="STEPS",
                   help="updates explained with numbers, e.g. 1,2,10 or none (default 1,2 for a rule other than plain)")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="number type of the training loop (float32 reproduces PyTorch's default)")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-sample gradient printout")
    p.add_argument("--no-verify", action="store_true",
                   help="train even without checking the gradients against PyTorch autograd first")
    _common(p)

    p = sub.add_parser("check", help="grade answers and diagnose mistakes")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("answers", nargs="*", help="answer file(s) (TOML)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: the precision written)")
    p.add_argument("--sigfigs", type=int, default=None,
                   help="significant digits an answer needs (default: the problem's [check] sigfigs, else 3)")
    p.add_argument("--roster", metavar="ROSTER.csv",
                   help="grade each student against their own variant (then every positional is an answers file)")
    p.add_argument("--report", metavar="FILE.csv|FILE.json",
                   help="write the class report: one row per student and item (CSV), or everything (JSON)")
    p.add_argument("--chart", metavar="FILE.png", help="draw the mistakes and the per-question verdicts")
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel processes for many answer files")
    p.add_argument("--no-verify", action="store_true",
                   help="grade even without checking the expected answers against PyTorch autograd first")
    _common(p, formats=("text", "markdown", "json"))

    p = sub.add_parser("variants", help="randomized per-student problems with solutions and answer keys")
    p.add_argument("problem", help="the problem file (TOML)")
    p.add_argument("-n", type=int, default=None, help="number of variants (default: 30, or one per student)")
    p.add_argument("--students", metavar="FILE", help="student names, one a line: one variant each, in roster.csv")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output directory")
    p.add_argument("--no-pdf", action="store_true", help="skip the solution PDFs")
    p.add_argument("--lang", choices=LANGS, default="en")

    p = sub.add_parser("broadcast", help="explain a broadcast of two tensor shapes")
    p.add_argument("shapes", nargs=2, metavar="SHAPE", help='shapes such as "(3,)" "(3,1)"')
    _common(p)
    for command in sub.choices.values():  # `explain solve --debug …` works as well as `explain --debug solve …`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


#: Options naming an output file, checked before any work (the variants directory is checked by its command).
OUTPUT_OPTIONS = {"output": "--output", "pdf": "--pdf", "graph": "--graph", "plot": "--plot", "report": "--report",
                  "chart": "--chart"}


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that ``finally`` blocks and cleanups run."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    is_program = argv is None  # the `explain` command itself, not a program calling main()
    argv = list(sys.argv[1:] if argv is None else argv)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding program): keep its handler
        previous = None
    args = None
    try:
        parser = build_parser()
        args = parser.parse_args(_expression_operand(parser, argv))
        if args.command is None:
            parser.print_help()
            return 2
        with _problem_warnings_shown():
            return _run(args, argv)
    except KeyboardInterrupt:
        if is_program:
            _ignore_further_signals()
        print(_message(getattr(args, "lang", "en"), "interrupted"), file=sys.stderr)
        if is_program:
            _exit_now(130)
        return 130
    except Terminated:
        if is_program:
            _ignore_further_signals()
        print(_message(getattr(args, "lang", "en"), "terminated"), file=sys.stderr)
        return 143
    finally:
        if previous is not None and not is_program:
            signal.signal(signal.SIGTERM, previous)


def _ignore_further_signals() -> None:
    """Once the run is stopped, a second Ctrl-C (or one still pending) must not turn the
    exit code 130 into a death by SIGINT (-2) halfway through the cleanup."""
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(number, signal.SIG_IGN)
        except ValueError:  # not the main thread
            return


def _exit_now(code: int) -> None:
    """End the process with ``code`` at once, skipping the interpreter's finalization.

    A KeyboardInterrupt that passes through ``exec`` or ``eval`` of a string (as
    dataclasses, namedtuple and lambdify do while a module loads) sets a flag in
    CPython that survives the ``except`` which handles it; at a normal exit CPython
    then kills the process with SIGINT, and the caller sees -2 instead of 130.  By
    now every ``finally`` has run and every output file is cleaned up.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    from .files import all_or_none, check_output
    from .errors import ExplainError
    from .sanitize import printable

    lang = getattr(args, "lang", "en")
    try:
        for dest, option in OUTPUT_OPTIONS.items():
            if getattr(args, dest, None):
                check_output(getattr(args, dest), option)  # all outputs checked before the first is written
        command = import_module(f"explain.commands.{args.command}")
        with all_or_none():
            return int(command.run(args))
    except BrokenPipeError:
        _quiet_stdout()  # the reader went away (`explain … | head`): nothing more to say
        return 141
    except Exception as exc:  # noqa: BLE001 - bad input is reported, a bug is reported as one
        if args.debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, ExplainError):
            print(f"explain: error: {printable(str(exc))}", file=sys.stderr)
            return getattr(exc, "exit_code", 2)  # 1 for a verification that failed
        reason = printable(f"{type(exc).__name__}: {exc}")
        command_line = printable(shlex.join(["explain", *argv]))
        print(_message(lang, "internal_error", reason=reason, command=command_line), file=sys.stderr)
        if not args.debug:
            print(_message(lang, "internal_error_debug"), file=sys.stderr)
        return 3


def _message(lang: str, key: str, **fields: str) -> str:
    from .i18n import Messages

    try:
        return Messages(lang)(key, **fields)
    except Exception:  # noqa: BLE001 - an unknown language must not hide the message
        return Messages("en")(key, **fields)


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _expression_operand(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """Let ``grad``'s expression start with ``-`` (``explain grad "-x*w" --wrt w``).

    argparse reads ``-x*w`` as an unknown option.  The first word after
    ``grad`` that starts with ``-`` but is not one of grad's options (nor an
    option's value) is the expression: it is passed after ``--``, where
    argparse takes it as the positional.
    """
    if "grad" not in argv:
        return argv
    start = argv.index("grad") + 1
    if any(not a.startswith("-") for a in argv[:start - 1]):  # "grad" is not the command word
        return argv
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    options = sub.choices["grad"]._option_string_actions  # noqa: SLF001
    words = argv[start:]
    expect_value = False
    for i, word in enumerate(words):
        if expect_value:
            expect_value = False
            continue
        if word == "--" or word == "-" or not word.startswith("-"):
            return argv  # the expression is there already
        name = word.split("=", 1)[0]
        action = options.get(name) or (_long_prefix(name, options) if word.startswith("--") else None)
        if action is not None:
            expect_value = action.nargs != 0 and "=" not in word
            continue
        if word[:2] in options:  # a short option with its value attached: -p6, -ofile.txt
            continue
        return argv[:start] + words[:i] + words[i + 1:] + ["--", word]
    return argv


def _long_prefix(name: str, options: dict[str, argparse.Action]) -> argparse.Action | None:
    """argparse accepts unambiguous prefixes of long options (``--prec`` for ``--precision``)."""
    if not name[2:].replace("-", "").isalnum():
        return None
    matches = {options[o] for o in options if o.startswith(name)}
    return matches.pop() if len(matches) == 1 else None



@contextlib.contextmanager
def _problem_warnings_shown() -> Iterator[None]:
    """Warnings about a problem file go to standard error as one plain line (for this run only)."""
    import warnings

    from .placement import ProblemWarning
    from .sanitize import printable

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, ProblemWarning):
            print(f"explain: warning: {printable(str(message))}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


if __name__ == "__main__":
    raise SystemExit(main())
