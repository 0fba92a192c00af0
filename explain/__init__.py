"""explain — gradients explained, step by step.

Build a problem symbolically, derive every chain-rule partial derivative with the
numbers at each step, verify them against PyTorch autograd, train with gradient
descent, and render worked solutions::

    import explain
    problem = explain.load("examples/seed003_network.toml")
    d = explain.derive(problem)
    d.gradients["w1"].value          # -0.0084214805...
    explain.grad("sigmoid(w*x + b)", wrt=["w", "b"], at={"w": 1, "b": 2, "x": 3})

Attributes are imported lazily, so that ``explain --help`` starts without
loading SymPy, NumPy or PyTorch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "ExplainError": "explain.errors",
    "Problem": "explain.problem",
    "TrainConfig": "explain.problem",
    "load": "explain.problem",
    "loads": "explain.problem",
    "from_dict": "explain.problem",
    "Graph": "explain.graph",
    "Derivation": "explain.derivation",
    "derive": "explain.derivation",
    "grad": "explain.api",
    "solve": "explain.api",
    "Solution": "explain.api",
    "TensorProgram": "explain.tensorgraph",
    "MatrixDerivation": "explain.tensorgraph",
    "derive_matrix": "explain.tensorgraph",
    "verify_matrix": "explain.tensorverify",
    "train_program": "explain.tensorverify",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .api import Solution, grad, solve
    from .derivation import Derivation, derive
    from .errors import ExplainError
    from .graph import Graph
    from .problem import Problem, TrainConfig, from_dict, load, loads
    from .tensorgraph import MatrixDerivation, TensorProgram, derive_matrix
    from .tensorverify import train_program, verify_matrix


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'explain' has no attribute {name!r}")
