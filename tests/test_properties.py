"""Properties over random expressions: the symbolic chain rule agrees with
central finite differences of the expression itself (evaluated independently,
by NumPy on the original formula, not by explain's compiled program)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explain

VARIABLES = ("a", "b", "c")

# Each building block keeps values finite and functions smooth on [-1.5, 1.5].
_leaf = st.sampled_from(VARIABLES) | st.sampled_from(["0.5", "2", "1.5", "3"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    unary = st.sampled_from([
        "sigmoid({})", "tanh({})", "exp(tanh({}))", "log(1 + ({})**2)", "sqrt(1 + ({})**2)", "softplus({})",
        "-({})", "({})**2", "({})**3", "sin({})", "cos({})",
    ])
    binary = st.sampled_from(["({}) + ({})", "({}) - ({})", "({})*({})", "({})/(1 + ({})**2)"])
    return st.one_of(
        st.builds(lambda f, x: f.format(x), unary, children),
        st.builds(lambda f, x, y: f.format(x, y), binary, children, children),
    )


expressions = st.recursive(_leaf, _combine, max_leaves=8)
points = st.tuples(*(st.floats(-1.5, 1.5, allow_nan=False) for _ in VARIABLES))

_NUMPY = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "softplus": lambda z: np.log1p(np.exp(z)), "sin": np.sin, "cos": np.cos,
}


def _numeric(text: str, values: dict[str, float]) -> float:
    # The test's own evaluation of the formula, independent of explain's parser
    # and compiler: Python evaluates the test-generated text with NumPy functions.
    return float(eval(text, {"__builtins__": {}}, {**_NUMPY, **values}))  # noqa: S307 - test-generated text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_gradient_equals_central_difference(text, point):
    values = dict(zip(VARIABLES, point))
    used = [v for v in VARIABLES if re.search(rf"\b{v}\b", text)]
    if not used:
        return
    d = explain.grad(text, at={v: values[v] for v in used})
    assert d.loss_value == pytest.approx(_numeric(text, values), rel=1e-9, abs=1e-12)
    for name in used:
        h = 1e-6 * max(1.0, abs(values[name]))
        up = _numeric(text, {**values, name: values[name] + h})
        down = _numeric(text, {**values, name: values[name] - h})
        fd = (up - down) / (2 * h)
        assert math.isfinite(d.gradients[name].value)
        assert d.gradients[name].value == pytest.approx(fd, rel=1e-5, abs=1e-6), (text, name)


@settings(max_examples=40, deadline=None)
@given(expressions, points)
def test_gradient_equals_torch_autograd(text, point):
    torch = pytest.importorskip("torch")
    values = dict(zip(VARIABLES, point))
    used = [v for v in VARIABLES if re.search(rf"\b{v}\b", text)]
    if not used:
        return
    d = explain.grad(text, at={v: values[v] for v in used})
    tensors = {v: torch.tensor(values[v], dtype=torch.float64, requires_grad=True) for v in used}
    def tensor_input(f):
        return lambda z: f(torch.as_tensor(z, dtype=torch.float64))

    funcs = {name: tensor_input(f) for name, f in {
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
        "softplus": torch.nn.functional.softplus, "sin": torch.sin, "cos": torch.cos,
    }.items()}
    out = eval(text, {"__builtins__": {}}, {**funcs, **tensors})  # noqa: S307 - test-generated text
    out.backward()
    for name in used:
        assert d.gradients[name].value == pytest.approx(tensors[name].grad.item(), rel=1e-10, abs=1e-12), (text, name)
