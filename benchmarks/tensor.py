"""The tensor view at size: an MLP 784-128-10 on 1000 synthetic samples, in matrix form.

Prints, on each device (CPU, and CUDA where there is one):
  * derive:  the matrix-form derivation (every forward value, every stage's adjoint and
             every parameter's gradient, each a formula evaluated with NumPy);
  * verify:  its verification (PyTorch autograd per tensor node in float64, and
             central differences of entries);
  * step:    one training step on the compiled tensor program (torch forward,
             autograd backward, p ← p − η∇p), against the same step written by hand
             in torch on the same device: x @ W1.T + b1, relu, cross_entropy, backward.
Goals (issue 12): derive + verify under 2 s on the 2-core CI machine; a training step
within 1.2× of the hand-written loop.  Run: python benchmarks/tensor.py [--steps N] [--rounds R]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explain.tensorgraph import TensorProgram, derive_matrix  # noqa: E402
from explain.tensorverify import train_program, verify_matrix  # noqa: E402

SAMPLES, INPUTS, HIDDEN, CLASSES = 1000, 784, 128, 10


def problem(seed: int = 0) -> tuple[TensorProgram, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    arrays = {
        "x": rng.random((SAMPLES, INPUTS)),                       # pixels in [0, 1)
        "y": rng.integers(0, CLASSES, SAMPLES).astype(float),     # class labels
        "W1": rng.normal(size=(HIDDEN, INPUTS)) * np.sqrt(2 / INPUTS),  # He initialisation
        "b1": np.zeros(HIDDEN),
        "W2": rng.normal(size=(CLASSES, HIDDEN)) * np.sqrt(1 / HIDDEN),
        "b2": np.zeros(CLASSES),
    }
    program = TensorProgram.from_texts(
        parameters={k: arrays[k] for k in ("W1", "b1", "W2", "b2")},
        data={"x": arrays["x"], "y": arrays["y"]},
        forward={"h": "relu(W1 @ x + b1)", "z": "W2 @ h + b2", "l": "cross_entropy(z, y)"},
        reduction="mean", source="mlp-784-128-10")
    return program, arrays


def clock(device: str):
    """CPU seconds of this process on the CPU (the load of a shared machine is not counted), wall seconds on CUDA."""
    return time.process_time if device == "cpu" else time.perf_counter


def hand_written(arrays: dict[str, np.ndarray], device: str, steps: int, lr: float) -> float:
    """Seconds per step of the loop a student writes in torch (float64, the same device), set-up included."""
    tick = clock(device)
    if device == "cuda":
        torch.cuda.synchronize()
    start = tick()
    t = {k: torch.tensor(v, dtype=torch.float64, device=device) for k, v in arrays.items()}
    params = [t[k].clone().requires_grad_(True) for k in ("W1", "b1", "W2", "b2")]
    x, y = t["x"], t["y"].long()
    for _ in range(steps):
        W1, b1, W2, b2 = params
        loss = torch.nn.functional.cross_entropy(torch.relu(x @ W1.T + b1) @ W2.T + b2, y)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
    if device == "cuda":
        torch.cuda.synchronize()
    return (tick() - start) / steps


def tensor_program(program: TensorProgram, device: str, steps: int, lr: float) -> float:
    """Seconds per step of explain.train_program (set-up included: the program's tensors made on the device)."""
    tick = clock(device)
    start = tick()
    train_program(program, lr, steps, device=device)  # synchronizes CUDA itself
    return (tick() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed round (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds, the best kept (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both loops (default 1)")
    args = parser.parse_args()
    # One thread by default: with two threads on two shared cores, spinning workers make even CPU time
    # swing by ±30% between identical runs; the ratio is what is measured, and both loops get the same.
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"MLP {INPUTS}-{HIDDEN}-{CLASSES}, {SAMPLES} samples, float64; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    if not torch.cuda.is_available():
        print("(no CUDA device here: the GPU rows are skipped)")
    program, arrays = problem()
    start = time.perf_counter()
    md = derive_matrix(program)
    derive = time.perf_counter() - start
    for device in devices:
        start = time.perf_counter()
        result = verify_matrix(md, device=device)
        verify = time.perf_counter() - start
        assert result.passed, result.failures
        tensor_program(program, device, 1, 0.1)  # warm-up
        hand_written(arrays, device, 1, 0.1)
        # Alternated rounds, the best of each: on a shared machine the load changes between runs.
        ours = theirs = float("inf")
        for _ in range(args.rounds):
            ours = min(ours, tensor_program(program, device, args.steps, 0.1))
            theirs = min(theirs, hand_written(arrays, device, args.steps, 0.1))
        print(f"{device:5s} derive {derive:6.3f} s   verify {verify:6.3f} s   derive+verify {derive + verify:6.3f} s"
              f" (goal < 2 s)   rows {len(result.rows)}, max error {result.max_error:.1e}, "
              f"finite differences {len(result.finite_differences)}")
        kind = "CPU time" if device == "cpu" else "wall time"
        print(f"{device:5s} training step ({kind}): tensor program {ours * 1e3:7.2f} ms, hand-written torch "
              f"{theirs * 1e3:7.2f} ms, ratio {ours / theirs:5.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
