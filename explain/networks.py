"""The ``[network]`` shorthand: a layered network written as a table.

It expands into the same ``[values]``, ``[parameters]`` and ``[forward]`` stages a
user could have written by hand, so everything downstream sees one kind of
problem.  Three naming conventions are offered, because textbooks differ:

==========  ==================  =================  ================  ======
naming      inputs / targets    one hidden unit     weights           loss
==========  ==================  =================  ================  ======
mazur       i1 i2 / y1 y2       net_h1, out_h1      w1 w2 … (row by   E
                                                    row, layer by
                                                    layer)
io          x1 x2 / y1 y2       in_h1, out_h1       w1 w2 …           E
layered     x1 x2 / y1 y2       z1_1, a1_1          w1_11 (layer,     L
                                                    unit, input)
==========  ==================  =================  ================  ======

With more than one hidden layer, hidden layers are ``h1_``, ``h2_`` … (so
``out_h2_3`` is unit 3 of hidden layer 2); the output layer is ``o``.

``form = "matrix"`` writes the network with one weight matrix and bias per layer
instead (``W1``, ``b1``, ``z1 = "W1 @ x + b1"``: :func:`expand_matrix`).  Inputs and
targets given as rows (one a sample) make a data set in either form: they become
``[data]`` columns and ``reduction`` combines the samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import sympy as sp

from .errors import ExplainError
from .i18n import message
from .parse import Prebuilt
from .tensors import RANDOM_CALL, MAX_ENTRIES, read_nested

NAMINGS = ("mazur", "io", "layered")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity", "softmax")
LOSSES = ("half_sse", "sse", "mse", "bce", "cross_entropy")
FORMS = ("scalar", "matrix")
NETWORK_KEYS = ("inputs", "targets", "naming", "form", "loss", "reduction", "layers")
LAYER_KEYS = ("units", "activation", "weights", "bias", "train_bias", "slope")
# Size limits (docs/limits.md), checked before anything is expanded: a
# derivation costs about 0.2 ms per edge, so these keep a network's solve
# within seconds.
MAX_UNITS = 1000
MAX_INPUTS = 1000
MAX_LAYERS = 200
MAX_WEIGHTS = 5_000
#: Entries of a [network] data set (inputs or targets): as for a [data] column.
MAX_SAMPLE_VALUES = 10_000_000


class _Names:
    """Names of inputs, units, weights and biases under one convention."""

    def __init__(self, naming: str, n_layers: int) -> None:
        self.naming = naming
        self.n_layers = n_layers
        self._weight_count = 0

    def input(self, i: int) -> str:
        return f"i{i}" if self.naming == "mazur" else f"x{i}"

    def target(self, j: int) -> str:
        return f"y{j}"

    def _layer(self, layer: int) -> str:
        if layer == self.n_layers:
            return "o"
        return "h" if self.n_layers == 2 else f"h{layer}_"

    def pre(self, layer: int, j: int) -> str:
        if self.naming == "layered":
            return f"z{layer}_{j}"
        word = "net" if self.naming == "mazur" else "in"
        return f"{word}_{self._layer(layer)}{j}"

    def post(self, layer: int, j: int) -> str:
        if self.naming == "layered":
            return f"a{layer}_{j}"
        return f"out_{self._layer(layer)}{j}"

    def weight(self, layer: int, j: int, i: int, wide: bool) -> str:
        if self.naming == "layered":
            return f"w{layer}_{j}_{i}" if wide else f"w{layer}_{j}{i}"
        self._weight_count += 1
        return f"w{self._weight_count}"

    def bias(self, layer: int, j: int | None) -> str:
        if self.naming == "layered":
            return f"b{layer}" if j is None else f"b{layer}_{j}"
        return f"b{layer}" if j is None else f"b_{self._layer(layer)}{j}"

    def loss(self) -> str:
        return "L" if self.naming == "layered" else "E"


def expand_network(raw: Any, where: str) -> dict[str, Any]:
    """Expand a ``[network]`` table into values, parameters, forward and loss."""
    if not isinstance(raw, Mapping):
        raise ExplainError(where, "must be a table")
    for key in raw:
        if key not in NETWORK_KEYS:
            raise ExplainError(f"{where} {key}", f"unknown key; allowed keys: {', '.join(NETWORK_KEYS)}")
    form = raw.get("form", "scalar")
    if form not in FORMS:
        raise ExplainError(f"{where} form", f"must be one of {', '.join(FORMS)}, got {form!r}")
    samples = _samples(raw.get("inputs"), raw.get("targets"), where)
    if samples is None:
        inputs = _number_list(raw.get("inputs"), f"{where} inputs")
        targets = _number_list(raw.get("targets"), f"{where} targets")
        reduction = None
    else:
        input_rows, target_rows = samples
        inputs, targets = input_rows[0], target_rows[0]  # the widths; the values are the rows
        reduction = raw.get("reduction", "mean")
        if reduction not in ("sum", "mean"):
            raise ExplainError(f"{where} reduction", f"must be one of sum, mean, got {reduction!r}")
    if samples is None and "reduction" in raw:
        raise ExplainError(f"{where} reduction", message("network_reduction_single"))
    naming = raw.get("naming", "io")
    if naming not in NAMINGS:
        raise ExplainError(f"{where} naming", f"must be one of {', '.join(NAMINGS)}, got {naming!r}")
    if form == "matrix" and "naming" in raw:
        raise ExplainError(f"{where} naming", message("network_matrix_naming"))
    loss = raw.get("loss", "half_sse")
    if loss not in LOSSES:
        raise ExplainError(f"{where} loss", f"must be one of {', '.join(LOSSES)}, got {loss!r}")
    layers = raw.get("layers")
    if not isinstance(layers, list) or not layers or not all(isinstance(x, Mapping) for x in layers):
        raise ExplainError(f"{where} layers", "needs at least one [[network.layers]] table")
    _check_size(len(inputs), layers, where)
    if form == "matrix":
        expanded = expand_matrix(inputs, targets, layers, loss, where)
    else:
        expanded = _expand_scalar(inputs, targets, layers, naming, loss, where)
    if samples is not None:
        _as_data(expanded, form, input_rows, target_rows)
        expanded["reduction"] = reduction
    expanded.pop("input_names", None)
    expanded.pop("target_names", None)
    return expanded


def _samples(inputs: Any, targets: Any, where: str) -> tuple[list[list[float]], list[list[float]]] | None:
    """A data set (inputs as rows, one a sample) as rows of inputs and rows of targets; None for one sample.

    Targets are rows too, or one number per sample (a network with one output).
    """
    if not (isinstance(inputs, list) and inputs and isinstance(inputs[0], list)):
        return None
    rows = read_nested(inputs, f"{where} inputs", limit=MAX_SAMPLE_VALUES)
    if rows.ndim != 2:
        raise ExplainError(f"{where} inputs", message("tensor_list_mixed"))
    if not isinstance(targets, list) or not targets:
        raise ExplainError(f"{where} targets", message("network_targets_rows", n=len(rows)))
    goal = read_nested(targets, f"{where} targets", limit=MAX_SAMPLE_VALUES)
    if goal.ndim == 1:
        goal = goal.reshape(-1, 1)
    if len(goal) != len(rows):
        raise ExplainError(f"{where} targets", message("network_targets_count", got=len(goal), n=len(rows)))
    return rows.tolist(), goal.tolist()


def _as_data(expanded: dict[str, Any], form: str, inputs: list[list[float]], targets: list[list[float]]) -> None:
    """Move the inputs and targets of a data set from [values] to [data] columns (one value per sample)."""
    values = expanded["values"]
    data: dict[str, Any] = {}
    if form == "matrix":
        del values["x"], values["y"]
        data["x"], data["y"] = inputs, targets
    else:
        input_names = [n for n in values if n in expanded["input_names"]]
        target_names = [n for n in values if n in expanded["target_names"]]
        for names, rows in ((input_names, inputs), (target_names, targets)):
            for k, name in enumerate(names):
                del values[name]
                data[name] = [row[k] for row in rows]
    expanded["data"] = data


def _expand_scalar(inputs: list[float], targets: list[float], layers: list[Any], naming: str, loss: str,
                   where: str) -> dict[str, Any]:
    """The scalar forms (mazur, io, layered): one parameter per weight, one stage per unit."""

    names = _Names(naming, len(layers))
    values: dict[str, Any] = {names.input(i + 1): v for i, v in enumerate(inputs)}
    values.update({names.target(j + 1): v for j, v in enumerate(targets)})
    parameters: dict[str, Any] = {}
    forward: dict[str, str] = {}

    previous = [names.input(i + 1) for i in range(len(inputs))]
    for index, layer in enumerate(layers, start=1):
        lw = f"{where} layers[{index - 1}]"
        previous = _expand_layer(layer, index, previous, names, lw, values, parameters, forward)

    if len(previous) != len(targets):
        raise ExplainError(f"{where} targets", f"has {len(targets)} values but the last layer has {len(previous)} units")
    forward[names.loss()] = _loss_text(loss, previous, [names.target(j + 1) for j in range(len(targets))])
    return {"values": values, "parameters": parameters, "forward": forward, "loss": names.loss(),
            "input_names": [names.input(i + 1) for i in range(len(inputs))],
            "target_names": [names.target(j + 1) for j in range(len(targets))]}


def _layer_settings(layer: Mapping[str, Any], where: str) -> tuple[int, str, bool, float]:
    """A layer's keys checked, in either form: its units, activation, train_bias and slope."""
    for key in layer:
        if key not in LAYER_KEYS:
            raise ExplainError(f"{where} {key}", f"unknown key; allowed keys: {', '.join(LAYER_KEYS)}")
    units = layer.get("units")
    if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= MAX_UNITS:
        raise ExplainError(f"{where} units", f"must be a whole number between 1 and {MAX_UNITS}, got {units!r}")
    activation = layer.get("activation", "sigmoid")
    if activation not in ACTIVATIONS:
        raise ExplainError(f"{where} activation", f"must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    train_bias = layer.get("train_bias", False)
    if not isinstance(train_bias, bool):
        raise ExplainError(f"{where} train_bias", "must be true or false")
    slope = layer.get("slope", 0.01)
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope):
        raise ExplainError(f"{where} slope", "must be a number")
    return units, activation, train_bias, slope


def _activated(activation: str, pre: str, slope: float) -> str:
    """The stage text of an elementwise activation of ``pre`` (a unit's sum, or a layer's vector)."""
    if activation == "identity":
        return pre
    if activation == "leaky_relu":
        return f"leaky_relu({pre}, {slope!r})"
    return f"{activation}({pre})"


def _expand_layer(
    layer: Mapping[str, Any], index: int, previous: list[str], names: _Names, where: str,
    values: dict[str, Any], parameters: dict[str, Any], forward: dict[str, str],
) -> list[str]:
    units, activation, train_bias, slope = _layer_settings(layer, where)
    weights = _weights(layer.get("weights"), units, len(previous), f"{where} weights")
    biases = _biases(layer.get("bias"), units, index, names, f"{where} bias")

    wide = units > 9 or len(previous) > 9
    pre_names = []
    for j in range(units):
        terms = []
        for i, source in enumerate(previous):
            w = names.weight(index, j + 1, i + 1, wide)
            parameters[w] = weights[j][i]
            terms.append((w, source))
        bias = biases[j]
        bias_name = None
        if bias is not None:
            bias_name, bias_value = bias
            target = parameters if train_bias else values
            target.setdefault(bias_name, bias_value)
        pre = names.pre(index, j + 1)
        forward[pre] = _weighted_sum(terms, bias_name)
        pre_names.append(pre)

    posts = []
    for j, pre in enumerate(pre_names):
        post = names.post(index, j + 1)
        forward[post] = _softmax(pre, pre_names) if activation == "softmax" else _activated(activation, pre, slope)
        posts.append(post)
    return posts


def _check_size(n_inputs: int, layers: list[Any], where: str) -> None:
    """Refuse a network too big to derive, from its declared sizes alone."""
    if n_inputs > MAX_INPUTS:
        raise ExplainError(f"{where} inputs", message("network_too_many_inputs", n=n_inputs, limit=MAX_INPUTS))
    if len(layers) > MAX_LAYERS:
        raise ExplainError(f"{where} layers", message("network_too_many_layers", n=len(layers), limit=MAX_LAYERS))
    total, previous = 0, n_inputs
    for layer in layers:
        units = layer.get("units")
        if isinstance(units, bool) or not isinstance(units, int) or not 0 < units <= MAX_UNITS:
            return  # the layer's own check names the key
        total += units * previous
        previous = units
    if total > MAX_WEIGHTS:
        raise ExplainError(f"{where} layers", message("network_too_many_weights", n=total, limit=MAX_WEIGHTS))


def _weighted_sum(terms: list[tuple[str, str]], bias: str | None) -> Prebuilt:
    """``w1*x1 + w2*x2 + … + b``, built as one SymPy sum (it may have 1,000 terms)."""
    text = " + ".join([*(f"{w}*{x}" for w, x in terms), *([bias] if bias else [])])

    def make(names: Any) -> sp.Expr:
        products = [names[w] * names[x] for w, x in terms]
        return sp.Add(*products, *([names[bias]] if bias else []))

    return Prebuilt(text, make)


def _softmax(pre: str, pre_names: list[str]) -> Prebuilt:
    text = f"exp({pre})/(" + " + ".join(f"exp({p})" for p in pre_names) + ")"

    def make(names: Any) -> sp.Expr:
        return sp.exp(names[pre]) / sp.Add(*(sp.exp(names[p]) for p in pre_names))

    return Prebuilt(text, make)


def _number_list(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise ExplainError(where, "must be a non-empty list of numbers")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ExplainError(where, f"must contain only finite numbers, found {v!r}")
    return [float(v) for v in value]


def _weights(value: Any, units: int, inputs: int, where: str) -> list[list[Any]]:
    if isinstance(value, str):
        # A value expression such as "randn()" or "0.1*randn()", drawn once per weight.
        return [[value] * inputs for _ in range(units)]
    if not isinstance(value, list) or len(value) != units:
        raise ExplainError(where, f"must be a list of {units} rows (one per unit), each with {inputs} numbers, or an expression such as \"randn()\"")
    for j, row in enumerate(value):
        if not isinstance(row, list) or len(row) != inputs:
            raise ExplainError(f"{where}[{j}]", f"must be a list of {inputs} numbers (one per input)")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise ExplainError(f"{where}[{j}]", f"must contain numbers, found {v!r}")
    return value


def _biases(value: Any, units: int, layer: int, names: _Names, where: str) -> list[tuple[str, Any] | None]:
    if value is None:
        return [None] * units
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return [(names.bias(layer, None), value)] * units
    if isinstance(value, list) and len(value) == units:
        return [(names.bias(layer, j + 1), v) for j, v in enumerate(value)]
    raise ExplainError(where, f"must be a number (shared by the layer) or a list of {units} numbers")


def _loss_text(loss: str, outputs: list[str], targets: list[str]) -> Prebuilt:
    k = len(outputs)
    pairs = list(zip(outputs, targets))
    if loss == "half_sse":
        return _sum([f"({o} - {y})**2/2" for o, y in pairs], "{}", 1)
    if loss == "sse":
        return _sum([f"({o} - {y})**2" for o, y in pairs], "{}", 1)
    if loss == "mse":
        return _sum([f"({o} - {y})**2" for o, y in pairs], "({})/" + str(k), sp.Rational(1, k))
    if loss == "bce":
        return _sum([f"{y}*log({o}) + (1 - {y})*log(1 - {o})" for o, y in pairs], "-({})/" + str(k),
                    -sp.Rational(1, k))
    return _sum([f"{y}*log({o})" for o, y in pairs], "-({})", -1)


def _sum(terms: list[str], layout: str, factor: Any) -> Prebuilt:
    """``factor·(t1 + t2 + …)``, shown as ``layout`` around the sum; each small term is parsed."""
    from .parse import parse_expression

    def make(names: Any) -> sp.Expr:
        return factor * sp.Add(*(parse_expression(t, names) for t in terms))

    return Prebuilt(layout.format(" + ".join(terms)), make)


# -- form = "matrix" ---------------------------------------------------------------

def expand_matrix(inputs: list[float], targets: list[float], layers: list[Mapping[str, Any]], loss: str,
                  where: str) -> dict[str, Any]:
    """``form = "matrix"``: values ``x``, ``y``; parameters ``W1, b1, …``; stages ``z1, a1, …`` and the loss ``L``.

    Layer l has the parameter ``Wl`` (units × inputs, ``weights[j][i]`` from input i
    to unit j, as in the scalar forms) and the bias ``bl`` (a vector, or one number
    shared by the layer, broadcast).  Its stages are the tensor stages a user would
    write by hand, ``zl = "Wl @ a(l-1) + bl"`` and ``al = "sigmoid(zl)"``: text, not
    :class:`~explain.parse.Prebuilt`, so that they are read like any ``[forward]``
    stage and kept in ``Problem.tensor_texts`` for the matrix-form derivation.
    """
    values: dict[str, Any] = {"x": list(inputs), "y": list(targets)}
    parameters: dict[str, Any] = {}
    forward: dict[str, str] = {}
    previous, width = "x", len(inputs)
    for index, layer in enumerate(layers, start=1):
        lw = f"{where} layers[{index - 1}]"
        units, activation, train_bias, slope = _layer_settings(layer, lw)

        w, b, z, a = f"W{index}", f"b{index}", f"z{index}", f"a{index}"
        parameters[w] = _matrix_weights(layer.get("weights"), units, width, f"{lw} weights")
        bias = _matrix_bias(layer.get("bias"), units, f"{lw} bias")
        if bias is not None:
            (parameters if train_bias else values)[b] = bias
        forward[z] = f"{w} @ {previous} + {b}" if bias is not None else f"{w} @ {previous}"
        forward[a] = _activated(activation, z, slope)
        previous, width = a, units

    if width != len(targets):
        raise ExplainError(f"{where} targets", f"has {len(targets)} values but the last layer has {width} units")
    forward["L"] = _matrix_loss(loss, previous)
    return {"values": values, "parameters": parameters, "forward": forward, "loss": "L"}


def _matrix_loss(loss: str, out: str) -> str:
    """The network's loss over the output vector ``out`` and the targets ``y``, as tensor text."""
    return {
        "half_sse": f"sum(({out} - y)**2)/2",
        "sse": f"sum(({out} - y)**2)",
        "mse": f"mse({out}, y)",
        "bce": f"bce({out}, y)",
        "cross_entropy": f"-sum(y*log({out}))",
    }[loss]


def _matrix_weights(value: Any, units: int, inputs: int, where: str) -> Any:
    """A nested list of units × inputs numbers, or ``"randn()"``-style text drawn as one random matrix."""
    if units * inputs > MAX_ENTRIES:
        raise ExplainError(where, message("tensor_too_many", count=units * inputs, limit=MAX_ENTRIES))
    if isinstance(value, str):
        match = RANDOM_CALL.fullmatch(value)
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


def _matrix_bias(value: Any, units: int, where: str) -> Any:
    """None, one number (or value expression) shared by the layer, or a vector of one per unit."""
    if value is None:
        return None
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and len(value) == units:
        return read_nested(value, where).tolist()
    raise ExplainError(where, f"must be a number (shared by the layer) or a list of {units} numbers")
