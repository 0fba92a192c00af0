"""The training report as text, Markdown or rich tables, the way the seeds print it.

For sgd each update's sample and gradient is printed (``grad: 1.0 2.0 -2.0``,
like seeds 000/001) unless ``quiet``; long loss logs are thinned to about
:data:`SUMMARY_ROWS` rows; several runs end with a comparison table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..i18n import Messages
from ..sanitize import printable
from .tables import markdown_table, number, rich_table, text_table

#: Loss tables longer than this are thinned to about this many rows.
SUMMARY_ROWS = 20


def _header(run: Any, m: Messages) -> str:
    if run.optimizer == "gd":
        length = m("train_length_steps", steps=run.planned_steps)
    elif run.epochs is not None:
        length = m("train_length_epochs", epochs=run.epochs, steps=run.planned_steps)
    else:
        length = m("train_length_updates", steps=run.planned_steps)
    batch = m("train_batch", size=run.batch_size) if run.batch_size else ""
    # Sum or mean over samples only means something when there are samples.
    reduction = m("train_reduction", reduction=m(f"reduction_{run.reduction}")) if run.columns else ""
    if run.cost:  # a [cost]: its formula says how the samples are reduced, and what is added
        reduction = m("train_cost", cost=run.cost)
    heading = m("train_heading", optimizer=m(f"train_optimizer_{run.optimizer}"), rate=number(run.learning_rate),
                length=length, batch=batch, dtype=run.dtype, reduction=reduction)
    if run.update is not None and run.update.update != "plain":
        heading += m("optim_heading", update=m(f"optim_update_{run.update.update}"))
    return heading


def _prediction(run: Any, m: Messages, precision: int, when: str) -> str | None:
    p = run.prediction
    if p is None:
        return None
    inputs = ", ".join(f"{k} = {number(v, precision)}" for k, v in p.inputs.items())
    value = p.before if when == "before" else p.after
    if not math.isfinite(value):  # after a divergence: the divergence report says why
        return None
    return m(f"train_predict_{when}", output=p.output, inputs=inputs, value=number(value, precision))


def _gradient_line(record: Any, precision: int) -> str:
    numbers = [*record.inputs.values(), *record.gradients.values()]
    return "\tgrad: " + " ".join(number(v, precision) for v in numbers)


def _thin(count: int) -> list[int]:
    """Indices 0, k, 2k, … and the last, with a round stride k, about SUMMARY_ROWS of them."""
    if count <= SUMMARY_ROWS:
        return list(range(count))
    stride = 1
    for base in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000, 1_000_000):
        stride = base
        if count / base <= SUMMARY_ROWS:
            break
    picked = list(range(0, count, stride))
    if picked[-1] != count - 1:
        picked.append(count - 1)
    return picked


def loss_rows(run: Any, m: Messages, precision: int) -> tuple[list[str], list[list[str]]]:
    """The loss log as a table: by epoch for sgd/minibatch, by step for gd."""
    summary = run.epoch_summary if run.optimizer != "gd" else []
    if summary:
        heads = [m("train_epoch"), m("train_loss_all"), m("train_loss_last_batch")]
        rows = [[str(r["epoch"]), number(r["loss"], precision), number(r["last_batch_loss"], precision)]
                for r in (summary[i] for i in _thin(len(summary)))]
        return heads, rows
    heads = [m("train_step"), m("train_loss")]
    losses = run.losses
    return heads, [[str(i), number(float(losses[i]), precision)] for i in _thin(len(losses))]


def _sgd_log(run: Any, m: Messages, precision: int) -> list[str]:
    """The seed's log: each sample's gradient, and the loss at the end of each epoch."""
    lines = []
    per = run.updates_per_epoch
    for record in run.sample_gradients():
        lines.append(_gradient_line(record, precision))
        if (record.step + 1) % per == 0:
            epoch = record.step // per
            lines.append(m("train_epoch_line", epoch=epoch, loss=number(float(run.losses[record.step + 1]), precision),
                           last=number(float(run.batch_losses[record.step]), precision)))
    return lines


def _final_values(run: Any, precision: int) -> list[tuple[str, str]]:
    """Each parameter after training: a vector or matrix whole (``W1 = [[0.12, -0.3], …]``), a number alone."""
    final = run.final_parameters
    shapes = getattr(run, "shapes", {}) or {}
    from ..tensors import entries_of, entry_name

    whole = entries_of(shapes)
    out: list[tuple[str, str]] = []
    for name, value in final.items():
        if name not in whole:
            out.append((name, number(value, precision)))
            continue
        tensor, _ = whole[name]
        if not out or out[-1][0] != tensor:
            array = np.array([final[entry_name(tensor, index)] for index in np.ndindex(shapes[tensor])])
            out.append((tensor, _nested_numbers(array.reshape(shapes[tensor]), precision)))
    return out


def _nested_numbers(array: np.ndarray, precision: int) -> str:
    if array.ndim == 0:
        return number(float(array), precision)
    return "[" + ", ".join(_nested_numbers(row, precision) for row in array) + "]"


def _outcome(run: Any, m: Messages, precision: int) -> list[str]:
    lines = []
    params = ", ".join(f"{k} = {v}" for k, v in _final_values(run, precision))
    if run.divergence is not None:
        lines.append(m("train_diverged", step=run.divergence.step, kind=m(f"train_kind_{run.divergence.kind}"),
                       rate=number(run.learning_rate)))
    else:
        lines.append(m("train_final", steps=run.steps, loss=number(run.final_loss, precision), parameters=params))
        if run.final_loss > run.initial_loss:
            lines.append(m("train_loss_grew", initial=number(run.initial_loss, precision),
                           final=number(run.final_loss, precision), rate=number(run.learning_rate)))
    return lines


def _comparison(runs: Sequence[Any], m: Messages, precision: int) -> tuple[list[str], list[list[str]]]:
    heads = [m("train_rate"), m("train_loss_final"), m("train_parameters_final"), m("train_status")]
    by_rule = len({r.update.update for r in runs if r.update is not None}) > 1
    if by_rule:
        heads = [m("optim_column"), *heads]
    rows = []
    for r in runs:
        params = ", ".join(f"{k} = {number(v, precision)}" for k, v in r.final_parameters.items())
        if r.divergence is not None:
            status = m("train_status_diverged", step=r.divergence.step)
        elif r.final_loss > r.initial_loss:
            status = m("train_status_grew")
        else:
            status = m("train_status_ok")
        row = [number(r.learning_rate), number(r.final_loss, precision), params, status]
        rows.append([m(f"optim_update_{r.update.update}"), *row] if by_rule else row)
    return heads, rows


def _update_blocks(run: Any, m: Messages, precision: int, out: _Text) -> list[Any]:
    """The torch.optim comparison and the explained updates (explain.optimizers builds the records)."""
    from ..optimizers import explanation

    parts: list[Any] = []
    if run.optimizer_check is not None:
        parts += [run.optimizer_check.message(m), ""]
    record = explanation(run, run.explain_steps, precision) if run.explain_steps else None
    if record and record["steps"]:
        parts += [out.heading(m("optim_explained")), "", out.explained(record, m), ""]
    return parts


class _Text:
    """How one output format writes headings, tables and the sgd log."""

    def explained(self, record: Any, m: Messages) -> Any:
        from ..optimizers import explanation_lines

        return "\n".join(explanation_lines(record, m))

    def heading(self, text: str) -> Any:
        return text

    def table(self, heads: list[str], rows: list[list[str]]) -> Any:
        return text_table(heads, rows)

    def log(self, lines: list[str]) -> Any:
        return "\n".join(lines)


class _Markdown(_Text):
    def explained(self, record: Any, m: Messages) -> Any:
        from ..optimizers import explanation_markdown

        return explanation_markdown(record, m)

    def heading(self, text: str) -> Any:
        return f"### {text}"

    def table(self, heads: list[str], rows: list[list[str]]) -> Any:
        return markdown_table(heads, rows)

    def log(self, lines: list[str]) -> Any:
        return "```text\n" + "\n".join(lines) + "\n```"


class _Rich(_Text):
    def table(self, heads: list[str], rows: list[list[str]]) -> Any:
        return rich_table("", heads, rows)


def _blocks(runs: Sequence[Any], m: Messages, precision: int, quiet: bool, out: _Text) -> list[Any]:
    """The report as a list of items: strings, and tables in the format of ``out``."""
    parts: list[Any] = []
    for run in runs:
        parts += [out.heading(_header(run, m)), ""]
        before = _prediction(run, m, precision, "before")
        if before:
            parts += [before, ""]
        if run.optimizer == "sgd" and not quiet:
            parts += [out.log(_sgd_log(run, m, precision)), ""]
        else:
            parts += [out.table(*loss_rows(run, m, precision)), ""]
        after = _prediction(run, m, precision, "after")
        parts += _outcome(run, m, precision) + ([after] if after else []) + [""]
        parts += _update_blocks(run, m, precision, out)
    if len(runs) > 1:
        by_rule = len({r.update.update for r in runs if r.update is not None}) > 1
        title = m("optim_comparison") if by_rule else m("train_comparison")
        parts += [out.heading(title), "", out.table(*_comparison(runs, m, precision))]
    return parts


def render_text(runs: Sequence[Any], m: Messages | None = None, precision: int = 6, quiet: bool = False) -> str:
    m = m or Messages("en")
    return "\n".join(_blocks(runs, m, precision, quiet, _Text())).rstrip()


def render_markdown(runs: Sequence[Any], m: Messages | None = None, precision: int = 6, quiet: bool = False) -> str:
    m = m or Messages("en")
    return "\n".join(_blocks(runs, m, precision, quiet, _Markdown())).rstrip()


def print_rich(runs: Sequence[Any], m: Messages, precision: int, quiet: bool, plot: str | None) -> None:
    """On a colour terminal: rich tables, headings in bold, divergence in red."""
    from rich.console import Console

    console = Console(highlight=False)
    diverged = {m("train_diverged", step=r.divergence.step, kind=m(f"train_kind_{r.divergence.kind}"),
                  rate=number(r.learning_rate)) for r in runs if r.divergence is not None}
    headings = {_header(r, m) for r in runs} | {m("train_comparison"), m("optim_comparison"), m("optim_explained")}
    for item in _blocks(runs, m, precision, quiet, _Rich()):
        if isinstance(item, str):
            style = "bold red" if item in diverged else "bold" if item in headings else None
            console.print(item, style=style, markup=False)
        else:
            console.print(item)
    if plot:
        console.print(printable(m("train_plot_written", path=plot)), markup=False)
