"""Variants: one problem per student, with randomized numbers and an answer key.

A teacher hands out the same problem with different numbers, so that answers
cannot be copied but every student faces the same steps.  Each variant is the
original problem file with its given numbers — ``[values]``, ``[parameters]``
and the ``[network]`` inputs, targets, weights and biases — redrawn:

* each number is multiplied by a factor drawn uniformly from [0.5, 1.5], so it
  keeps its sign and its size (zeros stay zero);
* it is rounded to the digits a student would copy (two significant digits,
  at most two decimals for numbers above 0.01; whole numbers stay whole);
  a number between 0 and 1 (a target of a sigmoid, say) stays below 1;
* a draw is kept only when the problem stays well-conditioned: every value
  finite, no sigmoid or tanh saturated (|input| ≤ 4), no parameter gradient
  vanishing; otherwise it is drawn again;
* a problem drawing random values itself (``"randn()"`` with ``seed``) gets a
  new seed per variant.

Variant k depends only on ``seed`` and k (not on how many are drawn), so
``-n 30`` and ``-n 40`` share their first 30 variants.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .derivation import Derivation, derive
from .diagnose import Student
from .errors import ExplainError
from .i18n import message
from .problem import Problem, loads

#: How many draws are tried for one variant before giving up.
TRIES = 200
#: Largest accepted |input| of a sigmoid or tanh (beyond it the activation saturates).
SATURATION = 4.0


@dataclass
class Variant:
    """One student's problem: its name, its file text, and its derivation."""

    name: str
    text: str
    problem: Problem
    derivation: Derivation

    def answers(self) -> dict[str, Any]:
        """The answer key, in the keys of an answers file (stage values, dE/dw, w+, E+)."""
        d, p = self.derivation, self.problem
        loss = d.graph.loss
        key: dict[str, Any] = {s.name: _plain(s.value) for s in d.forward}
        key.update({f"d{loss}/d{name}": g.value for name, g in d.gradients.items()})
        if p.train is not None:
            batch = {"sgd": 1, "minibatch": p.train.batch_size}.get(p.train.optimizer)
            student = Student(d.graph, p.train.learning_rate, batch, program=d.program)
            key.update({f"{name}+": v for name, v in student.correct.after.items()})
            key[f"{loss}+"] = student.correct.loss_after
        return key


def make_variants(path: str | Path, n: int, seed: int = 1) -> list[Variant]:
    """Draw ``n`` variants of the problem file at ``path`` (reproducible from ``seed``)."""
    if not 1 <= n <= 10_000:
        raise ExplainError("-n", f"must be between 1 and 10000, got {n}")
    from .files import read_input

    source = str(path)
    text = read_input(path)
    loads(text, source)  # the original must be valid before anything is drawn
    raw = tomllib.loads(text)
    width = max(2, len(str(n)))
    return [_variant(text, raw, Path(path).name, seed, k, f"variant_{k:0{width}d}") for k in range(1, n + 1)]


def _variant(original: str, raw: Mapping[str, Any], origin: str, seed: int, k: int, name: str) -> Variant:
    rng = np.random.default_rng([seed, k])
    for _ in range(TRIES):
        drawn = _redraw(raw, rng, k)
        text = (f"# Variant {k} of {origin}, drawn by: explain variants {origin} --seed {seed}\n"
                + rewrite_toml(original, raw, drawn))
        try:
            problem = loads(text, f"{name}.toml")
            derivation = derive(problem)
        except ExplainError:
            continue
        if well_conditioned(derivation):
            return Variant(name, text, problem, derivation)
    raise ExplainError(origin, message("variants_ill_conditioned", tries=TRIES))


def _redraw(raw: Mapping[str, Any], rng: np.random.Generator, k: int) -> dict[str, Any]:
    drawn = copy.deepcopy(dict(raw))
    if "title" in drawn:
        drawn["title"] = f"{drawn['title']} (variant {k})"
    for section in ("values", "parameters"):
        if isinstance(drawn.get(section), dict):
            drawn[section] = {key: _draw(v, rng) for key, v in drawn[section].items()}
    network = drawn.get("network")
    if isinstance(network, dict):
        for key in ("inputs", "targets"):
            network[key] = _draw(network.get(key), rng)
        for layer in network.get("layers", []):
            if isinstance(layer, dict):
                for key in ("weights", "bias"):
                    if key in layer:
                        layer[key] = _draw(layer[key], rng)
    if "seed" in drawn and _has_random(raw):
        drawn["seed"] = int(rng.integers(0, 2**31 - 1))
    return drawn


def _draw(value: Any, rng: np.random.Generator) -> Any:
    """One number redrawn (lists element by element); anything else kept."""
    if isinstance(value, list):
        return [_draw(v, rng) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0 or not math.isfinite(value):
        return value
    for _ in range(20):
        v = value * rng.uniform(0.5, 1.5)
        if isinstance(value, int):
            rounded: float | int = int(round(v))
        else:
            decimals = max(0, 1 - math.floor(math.log10(abs(v))))
            rounded = round(v, min(decimals, 2) if abs(v) >= 0.01 else decimals)
        if rounded != 0 and (abs(value) >= 1 or abs(rounded) < 1):
            return rounded
    return value


def _has_random(raw: Any) -> bool:
    if isinstance(raw, str):
        return re.search(r"\b(randn|rand|uniform)\s*\(", raw) is not None
    if isinstance(raw, Mapping):
        return any(_has_random(v) for v in raw.values())
    if isinstance(raw, list):
        return any(_has_random(v) for v in raw)
    return False


def well_conditioned(d: Derivation) -> bool:
    """Finite values, no saturated sigmoid/tanh, no vanishing gradient."""
    ev = d.evaluation
    for values in (ev.values, ev.adjoints):
        for v in values.values():
            a = np.asarray(v, dtype=float)
            if not np.all(np.isfinite(a)) or np.any(np.abs(a) > 1e6):
                return False
    for node in d.graph.stages:
        if isinstance(node.expr, (sp.tanh,)) or type(node.expr).__name__ == "sigmoid":
            arg = node.expr.args[0]  # type: ignore[union-attr]
            if arg.is_Symbol and np.any(np.abs(np.asarray(ev.values[arg.name], dtype=float)) > SATURATION):
                return False
    grads = [abs(g.value) for g in d.gradients.values() if g.path_count > 0]
    return bool(grads) and min(grads) > 1e-8 * max(1.0, max(grads))


# -- answer keys -----------------------------------------------------------------------
def answer_key(variants: list[Variant], pdfs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The answer key of all variants (answer_key.json)."""
    out = []
    for v in variants:
        d = v.derivation
        out.append({
            "name": v.name,
            "file": f"{v.name}.toml",
            "pdf": (pdfs or {}).get(v.name),
            "values": {**v.problem.values},
            "parameters": {**v.problem.parameters},
            "forward": {s.name: _plain(s.value) for s in d.forward},
            "loss": {"name": d.graph.loss, "value": d.loss_value},
            "gradients": {p: g.value for p, g in d.gradients.items()},
            "answers": v.answers(),
        })
    return {"variants": out}


def answer_key_csv(variants: list[Variant]) -> str:
    """One row per variant and answer key, in the keys of an answers file (answer_key.csv)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variant", "key", "value"])
    for v in variants:
        for key, value in v.answers().items():
            writer.writerow([v.name, key, json.dumps(value) if isinstance(value, list) else repr(float(value))])
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    a = np.asarray(value, dtype=float)
    return float(a) if a.ndim == 0 else [float(x) for x in a]


# -- writing TOML: the teacher's own file, with the drawn numbers ---------------------------
def rewrite_toml(original: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The text of ``original`` (parsed as ``old``) with every value that differs in ``new``
    replaced, through tomlkit: the teacher's layout, comments and key order are kept, so a
    student's variant reads like the sheet it was drawn from."""
    import tomlkit

    document = tomlkit.parse(original)
    _update(document, old, new)
    return tomlkit.dumps(document)


def _update(node: Any, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            _update(node[key], before, value)
        elif _is_table_array(value) and _is_table_array(before) and len(value) == len(before):
            for i, (item, was) in enumerate(zip(value, before)):
                _update(node[key][i], was, item)
        elif key not in old or value != before:
            node[key] = value


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)
