"""Broadcasting explained: which shapes combine, into what, and how gradients flow back.

Seed 001 adds a ``(3,)`` tensor to a ``(3, 1)`` tensor and gets a ``(3, 3)``
one; students then wonder what the gradient of each operand is.  The rules
(NumPy's and PyTorch's, which agree) are applied here one dimension at a time,
as records a renderer prints: shapes aligned on the right, one step per
dimension, the result shape, and for every operand the axes its upstream
gradient is summed over (leading axes it lacked are summed away, axes where it
had size 1 are summed with ``keepdims``).  Shapes are parsed with a regular
expression of whole numbers only, never ``eval``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import ExplainError
from .i18n import message

#: More dimensions than this is not a homework question.
MAX_DIMS = 32
MAX_SIZE = 10**9
OPERAND_NAMES = "abcdefgh"

_WRAPPED = re.compile(r"^(?:torch\.Size\(\s*(?P<size>\[.*\])\s*\)|\((?P<paren>.*)\)|\[(?P<bracket>.*)\]|(?P<bare>.*))$")
_DIM = re.compile(r"^\d{1,10}$")


def parse_shape(text: str) -> tuple[int, ...]:
    """``"(3,)"``, ``"(3, 1)"``, ``"[3, 1]"``, ``"3,1"``, ``"3"``, ``"()"`` or ``"torch.Size([3, 1])"``."""
    where = f"shape {text!r}"
    match = _WRAPPED.match(text.strip())
    assert match is not None  # the last alternative matches anything
    inner = next(g for g in match.groups() if g is not None)
    if match.group("size") is not None:
        inner = inner.strip()[1:-1]
    parts = [p.strip() for p in inner.split(",")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # "(3,)": a trailing comma
    if parts == [""]:
        parts = []
    if len(parts) > MAX_DIMS:
        raise ExplainError(where, message("broadcast_too_many_dims", limit=MAX_DIMS))
    dims = []
    for part in parts:
        if not _DIM.match(part) or int(part) > MAX_SIZE:
            raise ExplainError(where, message("broadcast_bad_shape", part=part))
        dims.append(int(part))
    return tuple(dims)


@dataclass(frozen=True)
class DimensionStep:
    """One dimension, counted from the right (``-1`` is the last): the sizes met and the rule applied.

    ``sizes`` has one entry per operand, ``None`` where the operand has no such
    dimension.  ``rule`` is ``same`` (all equal), ``stretch`` (some operands
    have 1 or lack it and are repeated) or ``incompatible``.
    """

    position: int
    axis: int
    sizes: tuple[int | None, ...]
    result: int | None
    rule: str
    repeated: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "axis": self.axis, "sizes": list(self.sizes), "result": self.result,
                "rule": self.rule, "repeated": list(self.repeated)}


@dataclass(frozen=True)
class GradientRule:
    """How the upstream gradient (result shape) is reduced back to one operand's shape."""

    operand: str
    shape: tuple[int, ...]
    summed_away: tuple[int, ...]
    summed_kept: tuple[int, ...]

    @property
    def numpy(self) -> str:
        """The NumPy expression, with ``grad`` the upstream gradient."""
        code = "grad"
        if self.summed_away:
            code += f".sum(axis={_axes(self.summed_away)})"
        if self.summed_kept:
            code += f".sum(axis={_axes(self.summed_kept)}, keepdims=True)"
        return code

    @property
    def torch(self) -> str:
        """The PyTorch expression (``sum_to_size`` does both reductions at once)."""
        if not self.summed_away and not self.summed_kept:
            return "grad"
        if not self.shape:
            return "grad.sum()"
        return f"grad.sum_to_size({', '.join(map(str, self.shape))})"

    def to_dict(self) -> dict[str, Any]:
        return {"operand": self.operand, "shape": list(self.shape), "summed_away": list(self.summed_away),
                "summed_kept": list(self.summed_kept), "numpy": self.numpy, "torch": self.torch}


@dataclass(frozen=True)
class Broadcast:
    """The whole explanation; ``result`` is None when the shapes are incompatible."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    aligned: tuple[tuple[int | None, ...], ...]
    steps: tuple[DimensionStep, ...]
    result: tuple[int, ...] | None
    gradients: tuple[GradientRule, ...]

    @property
    def compatible(self) -> bool:
        return self.result is not None

    @property
    def conflict(self) -> DimensionStep | None:
        return next((s for s in self.steps if s.rule == "incompatible"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "operands": [{"name": n, "shape": list(s)} for n, s in zip(self.names, self.shapes)],
            "aligned": [list(a) for a in self.aligned],
            "steps": [s.to_dict() for s in self.steps],
            "result": list(self.result) if self.result is not None else None,
            "compatible": self.compatible,
            "gradients": [g.to_dict() for g in self.gradients],
        }


def explain_broadcast(*shapes: tuple[int, ...] | str) -> Broadcast:
    """Apply the broadcasting rules to two or more shapes (tuples, or text for :func:`parse_shape`)."""
    parsed = tuple(parse_shape(s) if isinstance(s, str) else tuple(int(d) for d in s) for s in shapes)
    if len(parsed) < 2:
        raise ExplainError("broadcast", message("broadcast_needs_two"))
    names = tuple(OPERAND_NAMES[i] if i < len(OPERAND_NAMES) else f"t{i}" for i in range(len(parsed)))
    ndim = max(len(s) for s in parsed)
    aligned = tuple(tuple([None] * (ndim - len(s)) + list(s)) for s in parsed)
    steps = []
    for axis in reversed(range(ndim)):
        sizes = tuple(a[axis] for a in aligned)
        present = {d for d in sizes if d is not None}
        big = present - {1}
        if len(big) > 1:
            steps.append(DimensionStep(axis - ndim, axis, sizes, None, "incompatible", ()))
            continue
        result = big.pop() if big else 1
        repeated = tuple(n for n, d in zip(names, sizes) if d != result)
        steps.append(DimensionStep(axis - ndim, axis, sizes, result, "stretch" if repeated else "same", repeated))
    if any(s.rule == "incompatible" for s in steps):
        return Broadcast(names, parsed, aligned, tuple(steps), None, ())
    result_shape = tuple(s.result for s in reversed(steps))  # type: ignore[misc]
    gradients = tuple(_gradient(n, s, result_shape) for n, s in zip(names, parsed))
    return Broadcast(names, parsed, aligned, tuple(steps), result_shape, gradients)


def _gradient(name: str, shape: tuple[int, ...], result: tuple[int, ...]) -> GradientRule:
    lead = len(result) - len(shape)
    away = tuple(range(lead))
    kept = tuple(i for i, d in enumerate(shape) if d == 1 and result[lead + i] != 1)
    return GradientRule(name, shape, away, kept)


def _axes(axes: tuple[int, ...]) -> str:
    return str(axes[0]) if len(axes) == 1 else str(axes)


def _shape(shape: tuple[int, ...]) -> str:
    """Python's spelling: ``(3,)``, ``(3, 1)``, ``()``."""
    return str(tuple(shape))
