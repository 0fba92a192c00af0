"""``[network] form = "matrix"``: a layered network written with one weight matrix and bias vector per layer.

Layer l has the parameter ``Wl`` (units × inputs, ``weights[j][i]`` from input i to
unit j, as in the scalar forms) and the bias ``bl`` (a vector, or one number shared
by the layer); its stages are the tensor stages a user would write by hand,
``zl = "Wl @ a(l-1) + bl"`` and ``al = "sigmoid(zl)"``, with ``x`` the input vector
and ``y`` the target vector.  They are text (not :class:`~explain.parse.Prebuilt`),
so that they are read like any ``[forward]`` stage and kept in ``Problem.tensor_texts``
for the matrix-form derivation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import ExplainError
from .i18n import message
from .tensors import MAX_ENTRIES, _RANDOM, read_nested

LAYER_KEYS = ("units", "activation", "weights", "bias", "train_bias", "slope")


def expand_matrix(inputs: list[float], targets: list[float], layers: list[Mapping[str, Any]], loss: str,
                  where: str) -> dict[str, Any]:
    """Values ``x``, ``y``; parameters ``W1, b1, …``; stages ``z1, a1, …`` and the loss ``L``."""
    from .networks import ACTIVATIONS, MAX_UNITS

    values: dict[str, Any] = {"x": list(inputs), "y": list(targets)}
    parameters: dict[str, Any] = {}
    forward: dict[str, str] = {}
    previous, width = "x", len(inputs)
    for index, layer in enumerate(layers, start=1):
        lw = f"{where} layers[{index - 1}]"
        for key in layer:
            if key not in LAYER_KEYS:
                raise ExplainError(f"{lw} {key}", f"unknown key; allowed keys: {', '.join(LAYER_KEYS)}")
        units = layer.get("units")
        if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= MAX_UNITS:
            raise ExplainError(f"{lw} units", f"must be a whole number between 1 and {MAX_UNITS}, got {units!r}")
        activation = layer.get("activation", "sigmoid")
        if activation not in ACTIVATIONS:
            raise ExplainError(f"{lw} activation", f"must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        train_bias = layer.get("train_bias", False)
        if not isinstance(train_bias, bool):
            raise ExplainError(f"{lw} train_bias", "must be true or false")
        slope = layer.get("slope", 0.01)
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope):
            raise ExplainError(f"{lw} slope", "must be a number")

        w, b, z, a = f"W{index}", f"b{index}", f"z{index}", f"a{index}"
        parameters[w] = _weights(layer.get("weights"), units, width, f"{lw} weights")
        bias = _bias(layer.get("bias"), units, f"{lw} bias")
        if bias is not None:
            (parameters if train_bias else values)[b] = bias
        forward[z] = f"{w} @ {previous} + {b}" if bias is not None else f"{w} @ {previous}"
        if activation == "identity":
            forward[a] = z
        elif activation == "leaky_relu":
            forward[a] = f"leaky_relu({z}, {slope!r})"
        else:
            forward[a] = f"{activation}({z})"
        previous, width = a, units

    if width != len(targets):
        raise ExplainError(f"{where} targets", f"has {len(targets)} values but the last layer has {width} units")
    forward["L"] = _loss(loss, previous)
    return {"values": values, "parameters": parameters, "forward": forward, "loss": "L"}


def _loss(loss: str, out: str) -> str:
    """The network's loss over the output vector ``out`` and the targets ``y``, as tensor text."""
    return {
        "half_sse": f"sum(({out} - y)**2)/2",
        "sse": f"sum(({out} - y)**2)",
        "mse": f"mse({out}, y)",
        "bce": f"bce({out}, y)",
        "cross_entropy": f"-sum(y*log({out}))",
    }[loss]


def _weights(value: Any, units: int, inputs: int, where: str) -> Any:
    """A nested list of units × inputs numbers, or ``"randn()"``-style text drawn as one random matrix."""
    if units * inputs > MAX_ENTRIES:
        raise ExplainError(where, message("tensor_too_many", count=units * inputs, limit=MAX_ENTRIES))
    if isinstance(value, str):
        match = _RANDOM.fullmatch(value)
        if match is None or match["args"].strip():
            raise ExplainError(where, message("network_matrix_weights", units=units, inputs=inputs))
        scale = f"{match['scale']}*" if match["scale"] else ""
        return f"{scale}{match['func']}({units}, {inputs})"
    if not isinstance(value, list):
        raise ExplainError(where, message("network_matrix_weights", units=units, inputs=inputs))
    array = read_nested(value, where)
    if array.shape != (units, inputs):
        raise ExplainError(where, message("network_matrix_shape", shape=str(array.shape), units=units,
                                          inputs=inputs))
    return array.tolist()


def _bias(value: Any, units: int, where: str) -> Any:
    """None, one number (or value expression) shared by the layer, or a vector of one per unit."""
    if value is None:
        return None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and len(value) == units:
        return read_nested(value, where).tolist()
    raise ExplainError(where, f"must be a number (shared by the layer) or a list of {units} numbers")
