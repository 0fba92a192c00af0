"""Five small networks for measuring diagnosis quality (benchmarks/grading.py).

They differ in what a mistake can hide behind: seed 003's 2-2-2 sigmoid network,
Mazur's (shared biases, untrained), a tanh hidden layer with trained biases, a
network with two hidden layers (sigmoid then tanh) and a mean loss, and a 3-class
softmax with cross-entropy behind a square tanh layer (one layer transposable).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TANH = """
title = "2-3-2, tanh hidden, trained biases"
[network]
inputs = [0.4, -0.7]
targets = [0.2, 0.9]
loss = "half_sse"
[[network.layers]]
units = 3
activation = "tanh"
weights = [[0.3, -0.6], [0.8, 0.2], [-0.4, 0.5]]
bias = [0.1, -0.2, 0.05]
train_bias = true
[[network.layers]]
units = 2
activation = "sigmoid"
weights = [[0.7, -0.3, 0.45], [-0.55, 0.25, 0.6]]
bias = 0.15
train_bias = true
[train]
learning_rate = 0.5
"""

DEEP = """
title = "2-3-3-2, sigmoid then tanh hidden layers, mse"
[network]
inputs = [0.9, 0.35]
targets = [0.05, 0.75]
loss = "mse"
[[network.layers]]
units = 3
activation = "sigmoid"
weights = [[0.5, -0.35], [-0.2, 0.65], [0.4, 0.3]]
[[network.layers]]
units = 3
activation = "tanh"
weights = [[0.6, -0.45, 0.3], [0.25, 0.55, -0.7], [-0.5, 0.2, 0.35]]
[[network.layers]]
units = 2
activation = "sigmoid"
weights = [[0.8, -0.6, 0.35], [-0.25, 0.45, 0.7]]
[train]
learning_rate = 1.0
"""

SOFTMAX = """
title = "3-3-3, tanh hidden, softmax and cross-entropy"
[network]
inputs = [0.6, -0.4, 0.25]
targets = [0.0, 0.0, 1.0]
naming = "layered"
loss = "cross_entropy"
[[network.layers]]
units = 3
activation = "tanh"
weights = [[0.4, -0.3, 0.65], [0.2, 0.5, -0.45], [-0.6, 0.35, 0.15]]
[[network.layers]]
units = 3
activation = "softmax"
weights = [[0.55, -0.25, 0.3], [-0.4, 0.6, 0.2], [0.35, 0.15, -0.5]]
[train]
learning_rate = 0.1
"""


def networks() -> dict[str, str | Path]:
    """name → a problem file path or the text of one."""
    return {
        "seed003": ROOT / "examples" / "seed003_network.toml",
        "mazur": ROOT / "examples" / "mazur_network.toml",
        "tanh": TANH,
        "deep": DEEP,
        "softmax": SOFTMAX,
    }
