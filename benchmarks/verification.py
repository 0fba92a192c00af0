"""What verification costs, against a peer: one plain PyTorch forward and backward.

For each problem, time
  * derive:   explain's derivation (Graph, compiled program, every value and gradient);
  * autograd: verify's autograd witness (the Graph's expressions run in torch, backward,
              and the rounding-spread reruns that set each row's bound);
  * fd:       verify's finite differences (the loss at 50 digits with mpmath, per parameter);
  * peer:     the same loss written by hand in torch (float64) and differentiated once —
              what a student would do to "check with PyTorch".
and print each as a multiple of the peer.  Run: python benchmarks/verification.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import explain  # noqa: E402
from explain.verify import finite_difference_check, rounding_spread, torch_values_and_grads, UNIT_ROUNDOFF  # noqa: E402


def best(fn: Callable[[], Any], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peer(d: explain.Derivation) -> Callable[[], float]:
    # The problem's loss in plain torch: each stage's formula turned into a Python function by
    # sympy.lambdify over torch's own functions, run in order, differentiated once.  This is
    # how a student "checks with PyTorch"; it is a timing reference, not an oracle.
    import sympy as sp

    graph = d.graph
    nodes = list(graph.nodes.values())
    torch_names = {"sigmoid": torch.sigmoid, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh,
                   "SampleMean": torch.mean, "SampleSum": torch.sum}
    stages = [(n.name, sp.lambdify([m.symbol for m in nodes], n.expr, modules=[torch_names, "math"]))
              for n in nodes if n.expr is not None]
    leaves = {n.name: np.asarray(graph.leaf_values[n.name], dtype=float) for n in nodes if n.expr is None}

    def run() -> float:
        env = {k: torch.tensor(v, dtype=torch.float64, requires_grad=graph.nodes[k].kind == "parameter")
               for k, v in leaves.items()}
        for name, fn in stages:
            env[name] = fn(*[env.get(m.name) for m in nodes])
        env[graph.loss].backward()
        return float(env[graph.loss])

    # The peer computes the same loss, or its timing means nothing.
    assert abs(run() - d.loss_value) <= 1e-12 * max(1.0, abs(d.loss_value)), (run(), d.loss_value)
    return run


def measure(name: str, d: explain.Derivation, problem: explain.Problem, peer: Callable[[], float]) -> dict[str, Any]:
    graph = d.graph
    t_peer = best(peer, 5)
    t_derive = best(lambda: explain.derive(problem), 3)
    t_auto = best(lambda: (torch_values_and_grads(graph, "cpu", torch.float64),
                           rounding_spread(graph, "cpu", UNIT_ROUNDOFF["float64"])), 3)
    t_fd = best(lambda: finite_difference_check(d), 1)
    return {"problem": name, "parameters": len(graph.parameters), "peer": t_peer,
            "derive": t_derive, "autograd": t_auto, "fd": t_fd}


def main() -> None:
    rows = []
    seed003 = explain.load(ROOT / "examples" / "seed003_network.toml")
    d_seed003 = explain.derive(seed003)
    rows.append(measure("seed003 2-2-2 network", d_seed003, seed003, peer(d_seed003)))
    seed002 = explain.load(ROOT / "examples" / "seed002_polynomial.toml")
    d_seed002 = explain.derive(seed002)
    rows.append(measure(f"seed002 cubic, {len(np.asarray(seed002.data['x']))} samples", d_seed002, seed002,
                        peer(d_seed002)))
    mlp = explain.load(ROOT / "benchmarks" / "mlp_16_32_32_10.toml")
    d_mlp = explain.derive(mlp)
    rows.append(measure("MLP 16-32-32-10", d_mlp, mlp, peer(d_mlp)))
    print(f"{'problem':<32} {'params':>6} {'peer (torch)':>12} {'derive':>16} {'autograd check':>18} {'finite diff.':>18}")
    for r in rows:
        def cell(t: float) -> str:
            return f"{t * 1e3:8.1f} ms ×{t / r['peer']:5.0f}"
        print(f"{r['problem']:<32} {r['parameters']:>6} {r['peer'] * 1e3:9.2f} ms {cell(r['derive']):>16} "
              f"{cell(r['autograd']):>18} {cell(r['fd']):>18}")


if __name__ == "__main__":
    main()
