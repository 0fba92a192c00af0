"""Training: gradient-descent trajectories computed with the compiled program.

Why a module of its own?  Students learn as much from watching the loss fall
(or blow up) as from one derivation, and the seeds all end in a training loop.
Every number comes from :meth:`explain.compile.Program.loss_and_grad`, compiled
once and vectorized over samples; the loop only moves parameter slots in a
prebuilt list of leaves, so it runs as fast as a hand-written NumPy loop.

Conventions (documented in docs/verify-and-train.md):

* ``gd`` uses the whole data set for every step; an epoch is one step.
* ``sgd`` uses one sample at a time, in order (like seeds 000/001); an epoch is
  one pass over the samples, ``n`` updates.
* ``minibatch`` uses ``batch_size`` consecutive samples, in order (the last
  batch of an epoch may be smaller); the batch loss uses the problem's
  reduction over the batch (sum, or mean over the batch's samples).
* ``steps`` counts updates; ``epochs`` counts passes over the data.
* ``history`` has one entry per update plus the initial state (length
  updates + 1); each entry's ``loss`` is the loss over *all* samples at that
  state, so curves of different optimizers are comparable.  For sgd and
  minibatch this costs one full forward/backward pass per update.
* When the loss stops being finite the run stops: ``divergence`` names the
  step, and the history ends with that state (its loss is null in JSON).
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import finite
from .compile import Program
from .errors import ExplainError, located
from .graph import Graph
from .i18n import Messages, message
from .optimizers import UpdateConfig
from .problem import Problem, TrainConfig
from .tensors import entry_name

DTYPES = {"float64": np.float64, "float32": np.float32}
PLOT_FORMATS = ("png", "svg", "pdf")
TOP_DECADE = 200.0
#: At most this many numbers in a run's history (about 160 MB): steps × (2 × parameters + 2).
MAX_HISTORY_VALUES = 20_000_000

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Divergence:
    """Where training blew up: the loss after ``step`` updates was ``kind`` (inf or nan)."""

    step: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "kind": self.kind}


@dataclass(frozen=True)
class Prediction:
    """The model's output at given inputs, before and after training."""

    inputs: dict[str, float]
    output: str
    before: float
    after: float

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "output": self.output,
                "before": _json_float(self.before), "after": _json_float(self.after)}


@dataclass(frozen=True)
class SampleGradient:
    """One sgd update: the sample's data values and the gradient computed from it."""

    step: int
    epoch: int
    sample: int
    inputs: dict[str, float]
    gradients: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "sample": self.sample, "inputs": self.inputs,
                "gradients": {k: _json_float(v) for k, v in self.gradients.items()}}


@dataclass
class Training:
    """A training run: the trajectory as arrays, with list-of-dict views for JSON.

    ``losses[t]`` and ``states[t]`` are the loss over all samples and the
    parameters after ``t`` updates; ``batch_losses[t]`` and ``gradients[t]`` are
    the loss and gradient of the batch that update ``t`` was computed from.
    """

    optimizer: str
    learning_rate: float
    reduction: str
    dtype: str
    parameter_names: list[str]
    updates_per_epoch: int
    planned_steps: int
    epochs: int | None
    batch_size: int | None
    losses: np.ndarray
    states: np.ndarray
    batch_losses: np.ndarray
    gradients: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    prediction: Prediction | None = None
    divergence: Divergence | None = None
    #: The loss's formula when it is a [cost] (``mean(l) + lam/2*w**2``), not a bare reduction.
    cost: str | None = None
    #: The update rule and schedule (explain.optimizers); None only for Training objects built by hand.
    update: UpdateConfig | None = None
    #: The learning rate of each update (the schedule's value at that update's epoch).
    learning_rates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    #: The optimizer's state (``v``, ``m``, ``s`` …) before step 0 and after every step, one row per state.
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: Steps whose update is explained with numbers (1-based); see explain.optimizers.explanation.
    explain_steps: tuple[int, ...] = ()
    #: The step-by-step comparison with torch.optim (explain.optim_torch), when it was made.
    optimizer_check: Any = None
    #: The vector and matrix parameters by name, with their shapes (their entries are parameters).
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Updates actually made (fewer than planned when training diverged)."""
        return len(self.losses) - 1

    @property
    def diverged(self) -> bool:
        return self.divergence is not None

    @property
    def initial_loss(self) -> float:
        return float(self.losses[0])

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])

    @property
    def final_parameters(self) -> dict[str, float]:
        return dict(zip(self.parameter_names, map(float, self.states[-1])))

    @property
    def history(self) -> list[dict[str, Any]]:
        """SPEC §3: the state before step 0 and after every step."""
        names = self.parameter_names
        entries = [
            {"step": t, "loss": float(loss), "parameters": dict(zip(names, map(float, state)))}
            for t, (loss, state) in enumerate(zip(self.losses, self.states))
        ]
        # The optimizer's state after each step (velocity, averages): what students get wrong.
        for key, rows in self.optimizer_state.items():
            for entry, row in zip(entries, rows):
                entry.setdefault("state", {})[key] = dict(zip(names, map(float, row)))
        if self.update is not None and self.update.schedule.kind != "constant":
            for entry, rate in zip(entries[1:], self.learning_rates):
                entry["learning_rate"] = float(rate)
        return entries

    @property
    def epoch_summary(self) -> list[dict[str, Any]]:
        """One row per completed epoch: the loss over all samples and the last batch's loss.

        The last batch's loss is what the seeds print as ``l.item()`` at the end of an epoch.
        """
        per = self.updates_per_epoch
        rows = []
        for epoch in range(self.steps // per):
            end = (epoch + 1) * per
            rows.append({"epoch": epoch, "loss": float(self.losses[end]),
                         "last_batch_loss": float(self.batch_losses[end - 1])})
        return rows

    def sample_gradients(self) -> list[SampleGradient]:
        """For sgd: every update's sample and gradient (the seeds' ``grad: x y g`` lines)."""
        if self.optimizer != "sgd":
            return []
        n = self.updates_per_epoch
        names = self.parameter_names
        records = []
        for t in range(self.steps):
            i = t % n
            inputs = {c: float(v[i]) for c, v in self.columns.items()}
            records.append(SampleGradient(t, t // n, i, inputs, dict(zip(names, map(float, self.gradients[t])))))
        return records

    def to_dict(self) -> dict[str, Any]:
        """The ``training`` object of SPEC §3 (with a few more keys); inf and nan become null."""
        return _json_safe({
            "optimizer": self.optimizer, "learning_rate": self.learning_rate,
            "reduction": self.reduction, "cost": self.cost, "dtype": self.dtype,
            "steps": self.steps, "planned_steps": self.planned_steps,
            "epochs": self.epochs, "batch_size": self.batch_size,
            "history": self.history,
            "final": {"loss": _json_float(self.final_loss), "parameters": self.final_parameters},
            "epoch_summary": self.epoch_summary if self.optimizer != "gd" else [],
            "sample_gradients": [s.to_dict() for s in self.sample_gradients()],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "diverged": self.diverged,
            "divergence": self.divergence.to_dict() if self.divergence else None,
            **self._update_dict(),
        })

    def _update_dict(self) -> dict[str, Any]:
        """The update rule, its explained steps and the torch.optim comparison (absent for a hand-made run)."""
        if self.update is None:
            return {}
        from .optimizers import explanation

        out: dict[str, Any] = {"update": self.update.to_dict(),
                               "explained_updates": explanation(self, self.explain_steps)}
        if self.optimizer_check is not None:
            out["optimizer_check"] = self.optimizer_check.to_dict()
        return out

    def _repr_markdown_(self) -> str | None:
        from .render.notebook import display  # the render layer's one door, late (see there)

        return display(self, "markdown")


# -- the public calls ---------------------------------------------------------
def train(
    problem: Problem,
    program: Program | None = None,
    learning_rate: float | None = None,
    optimizer: str | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    *,
    batch_size: int | None = None,
    dtype: str = "float64",
    progress: Progress | None = None,
    update: str | None = None,
    explain_steps: Sequence[int] | None = None,
) -> Training:
    """Train ``problem`` with gradient descent; arguments override its ``[train]`` table.

    ``program`` is the problem's compiled :class:`~explain.compile.Program`
    (compiled here when not given).  ``dtype="float32"`` runs the whole loop in
    single precision, as ``torch.Tensor`` code does.  ``progress(done, total)``
    is called about a hundred times during the run.  ``update`` replaces the
    update rule (``"adam"``: its settings from ``[train]`` where they apply,
    torch's defaults otherwise; see :func:`explain.optimizers.switch`).
    ``explain_steps`` are the updates explained with numbers (default: the
    first two for an update rule other than plain, none for plain).
    """
    config = _config(problem.train or TrainConfig(), learning_rate, optimizer, steps, epochs, batch_size)
    if update is not None:
        from dataclasses import replace

        from .optimizers import switch

        config = replace(config, update=switch(config.update, update))
    if dtype not in DTYPES:
        raise ExplainError("dtype", message("train_bad_dtype", dtype=dtype, choices=", ".join(DTYPES)))
    program = program or Program(Graph.from_problem(problem))
    # Not finite before the first update is the problem's own numbers, not the
    # learning rate: report the step where it first appears, not a divergence.
    finite.check(program.graph, program.evaluate())
    training = _Trainer(problem, program, config, DTYPES[dtype]).run(dtype, progress)
    if training.divergence is not None and training.divergence.step == 0:
        # Finite in float64 (checked above) but not in float32, before any update.
        raise ExplainError("dtype", message("train_not_finite_at_start", kind=training.divergence.kind, dtype=dtype))
    if explain_steps is None:
        explain_steps = (1, 2) if config.update.update != "plain" else ()
    training.explain_steps = tuple(explain_steps)
    return training


def compare_learning_rates(problem: Problem, rates: Sequence[float], program: Program | None = None,
                           **options: Any) -> list[Training]:
    """Train once per learning rate (same start, same program), for one comparison plot."""
    program = program or Program(Graph.from_problem(problem))
    return [train(problem, program, learning_rate=rate, **options) for rate in rates]


def plot_losses(trainings: Sequence[Training], path: str | Path, lang: str = "en", title: str | None = None) -> None:
    """Draw the loss curves of one or several runs into ``path`` (.png, .svg or .pdf).

    Runs that diverged end with a cross at their last finite loss.  The y axis
    is logarithmic when the positive losses span more than three orders of
    magnitude (zeros are then left out).  The file is written atomically, so a
    failure leaves nothing behind.
    """
    fmt = plot_format(path)
    import matplotlib

    matplotlib.use("Agg")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log-scale transforms of huge losses
        data = _draw(trainings, fmt, Messages(lang), title)
    from .files import write_atomic

    write_atomic(path, data)


def plot_format(path: str | Path) -> str:
    """The file format named by the suffix; raises ExplainError for anything but png, svg, pdf."""
    suffix = Path(path).suffix
    fmt = suffix.lower().lstrip(".")
    if fmt not in PLOT_FORMATS:
        raise ExplainError(str(path), message("train_plot_format", suffix=suffix or "(none)",
                                              choices=", ".join(PLOT_FORMATS)))
    return fmt


def _draw(trainings: Sequence[Training], fmt: str, m: Messages, title: str | None) -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    by_epoch = all(t.optimizer != "gd" for t in trainings)
    by_rule = len({t.update.update for t in trainings if t.update is not None}) > 1
    span: list[float] = []
    for run in trainings:
        x = np.arange(len(run.losses)) / (run.updates_per_epoch if by_epoch else 1)
        label = (m(f"optim_update_{run.update.update}") if by_rule and run.update is not None
                 else m("train_plot_label", rate=_short(run.learning_rate)))
        line, = axes.plot(x, run.losses, label=label)
        finite_at = np.flatnonzero(np.isfinite(run.losses))
        if run.diverged and finite_at.size:
            last = finite_at[-1]
            mark = min(float(run.losses[last]), 10.0 ** TOP_DECADE)
            axes.plot([x[last]], [mark], marker="x", markersize=10, color=line.get_color(), clip_on=False)
        finite = run.losses[finite_at]
        span.extend(finite[finite > 0].tolist())
    if span and max(span) > 1e3 * min(span):
        axes.set_yscale("log", nonpositive="mask")  # an exact 0 loss is left out, not a crash
        low, high = math.log10(min(span)), math.log10(max(span))
        margin = 0.05 * (high - low)
        # Matplotlib's log ticks overflow near 1e308: a curve that blows up past
        # TOP_DECADE leaves the chart at the top, which is the picture of divergence.
        axes.set_ylim(10 ** (low - margin), 10 ** min(high + margin, TOP_DECADE))
    axes.set_xlabel(m("train_epoch") if by_epoch else m("train_step"))
    axes.set_ylabel(m("train_loss"))
    if title:
        axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()


# -- the loop -----------------------------------------------------------------
def _config(base: TrainConfig, learning_rate: float | None, optimizer: str | None, steps: int | None,
            epochs: int | None, batch_size: int | None) -> TrainConfig:
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if learning_rate is not None:
        if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate) and learning_rate > 0):
            raise ExplainError("learning_rate", message("train_bad_rate", rate=learning_rate))
        changes["learning_rate"] = float(learning_rate)
    if optimizer is not None:
        changes["optimizer"] = optimizer
    if steps is not None and epochs is not None:
        raise ExplainError("steps", message("train_steps_and_epochs"))
    for key, value in (("steps", steps), ("epochs", epochs), ("batch_size", batch_size)):
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ExplainError(key, message("train_bad_count", key=key, value=value))
    if steps is not None:
        changes.update(steps=steps, epochs=None)
    if epochs is not None:
        changes.update(epochs=epochs, steps=None)
    if batch_size is not None:
        changes["batch_size"] = batch_size
    return replace(base, **changes)


class _Trainer:
    """Holds the prebuilt leaves of one run; only parameter slots change inside the loop."""

    def __init__(self, problem: Problem, program: Program, config: TrainConfig, dtype: Any) -> None:
        graph = program.graph
        self.problem = problem
        self.program = program
        self.config = config
        self.dtype = dtype
        self.names = graph.parameters
        nodes = list(graph.nodes)
        self.slots = [nodes.index(p) for p in self.names]
        self.n = problem.n_samples or 1
        if config.optimizer not in ("gd", "sgd", "minibatch"):
            raise ExplainError("optimizer", message("train_bad_optimizer", optimizer=config.optimizer))
        if config.optimizer != "gd" and not problem.data:
            raise ExplainError("optimizer", message("train_needs_data", optimizer=config.optimizer))
        if config.optimizer == "minibatch" and not config.batch_size:
            raise ExplainError("batch_size", message("train_needs_batch_size"))
        if config.predict:  # a prediction that cannot be made is said before the run, not after it
            prediction_output(graph, list(config.predict), config.output, problem.source)
        start = {**problem.parameters, **problem.values, **problem.data}
        self.full = [_cast(v, dtype) for v in program.leaves(start)]
        self.batches = self._batches(nodes, graph)
        # Vectors and matrices train on the compiled tensor program (whole-matrix products);
        # float32 keeps the scalar program, which runs in the dtype it is given.
        self.loss_and_grad = program.loss_and_grad
        if problem.shapes and dtype is np.float64:
            from .tensorgraph import matrix_program

            tensor = matrix_program(problem)
            if tensor is not None:
                self.loss_and_grad = _TensorGradients(tensor, nodes, self.names)

    def _batches(self, nodes: list[str], graph: Graph) -> list[tuple[list[Any], int]]:
        """The leaves of each update within an epoch, with the batch's sample count."""
        opt = self.config.optimizer
        if opt == "gd":
            return [(self.full, self.n)]
        size = 1 if opt == "sgd" else min(int(self.config.batch_size or 1), self.n)
        data = [i for i, name in enumerate(nodes) if graph.nodes[name].kind == "data"]
        batches = []
        for start in range(0, self.n, size):
            leaves = list(self.full)
            for i in data:
                leaves[i] = self.full[i][start] if opt == "sgd" else self.full[i][start:start + size]
            batches.append((leaves, min(size, self.n - start)))
        return batches

    def updates(self) -> int:
        c = self.config
        if c.steps is not None:
            return int(c.steps)
        return int(c.epochs or 1) * len(self.batches)

    def run(self, dtype_name: str, progress: Progress | None) -> Training:
        total = self.updates()
        p = len(self.names)
        # The history (SPEC §3: every step's state, loss and gradient) is
        # allocated up front; refuse a run whose history would not fit rather
        # than ask for 60 GB (steps = 10**9).
        update = self.config.update
        kept = list(update.rule.init(np.zeros(p), update))  # the state this rule keeps (m, v, …)
        if (total + 1) * ((2 + len(kept)) * p + 3) > MAX_HISTORY_VALUES:
            raise ExplainError("steps", message("train_too_long", steps=total, parameters=p, limit=MAX_HISTORY_VALUES))
        losses = np.empty(total + 1)
        states = np.empty((total + 1, p))
        batch_losses = np.empty(total)
        gradients = np.empty((total, p))
        states[0] = [float(self.full[i]) for i in self.slots]
        self.optimizer_state = {key: np.empty((total + 1, p)) for key in kept}
        per = len(self.batches)
        epoch_rates = update.schedule.rates(self.config.learning_rate, -(-total // per) if total else 1)
        self.rates = np.array([epoch_rates[t // per] for t in range(total)], dtype=float) if total else np.empty(0)
        with np.errstate(all="ignore"):
            done, divergence = self._loop(total, losses, states, batch_losses, gradients, progress)
        c = self.config
        training = Training(
            optimizer=c.optimizer, learning_rate=c.learning_rate, reduction=self.program.graph.reduction,
            dtype=dtype_name, parameter_names=list(self.names), updates_per_epoch=len(self.batches),
            planned_steps=total, epochs=c.epochs, batch_size=c.batch_size if c.optimizer == "minibatch" else None,
            losses=losses[:done + 1].copy(), states=states[:done + 1].copy(),
            batch_losses=batch_losses[:done].copy(), gradients=gradients[:done].copy(),
            columns=dict(self.problem.data), divergence=divergence, cost=_cost_text(self.program.graph),
            update=update, learning_rates=self.rates[:done].copy(),
            optimizer_state={k: v[:done + 1].copy() for k, v in self.optimizer_state.items()},
            shapes={t: shape for t, shape in self.problem.shapes.items()
                    if entry_name(t, (0,) * len(shape)) in self.names},
        )
        training.prediction = predict(self.problem, self.program, training)
        return training

    def _loop(self, total: int, losses: np.ndarray, states: np.ndarray, batch_losses: np.ndarray,
              gradients: np.ndarray, progress: Progress | None) -> tuple[int, Divergence | None]:
        """Run the updates; returns how many were made and the divergence, if any."""
        f = self.loss_and_grad
        full, n, slots, batches = self.full, self.n, self.slots, self.batches
        per = len(batches)
        gd = self.config.optimizer == "gd"
        update = self.config.update
        step, rates, history = update.rule.step, self.rates, self.optimizer_state
        w = np.array([full[i] for i in slots], dtype=self.dtype)
        state = update.rule.init(w, update)
        for key, value in state.items():
            history[key][0] = value
        chunk = max(1, total // 100) if progress else total or 1
        isfinite = math.isfinite
        if not gd:
            losses[0] = f(full, n)[0]
            if not isfinite(losses[0]):
                return 0, Divergence(0, _kind(losses[0]))
        for begin in range(0, total, chunk):
            for t in range(begin, min(begin + chunk, total)):
                leaves, size = batches[t % per]
                if not gd:
                    for k, i in enumerate(slots):
                        leaves[i] = w[k]
                loss, grads = f(leaves, size)
                if gd:
                    losses[t] = loss
                    if not isfinite(loss):
                        return t, Divergence(t, _kind(loss))
                batch_losses[t] = loss
                gradients[t] = grads
                lr = float(rates[t])  # a Python float keeps a float32 run in float32
                w, state, _ = step(w, np.asarray(grads, dtype=w.dtype), state, t + 1, lr, update)
                for k, i in enumerate(slots):
                    full[i] = w[k]
                states[t + 1] = w
                for key, value in state.items():
                    history[key][t + 1] = value
                if not gd:
                    losses[t + 1] = loss = f(full, n)[0]
                    if not isfinite(loss):
                        return t + 1, Divergence(t + 1, _kind(loss))
            if progress:
                progress(min(begin + chunk, total), total)
        if gd:
            losses[total] = loss = f(full, n)[0]
            if not isfinite(loss):
                return total, Divergence(total, _kind(loss))
        return total, None


class _TensorGradients:
    """``loss_and_grad`` of the compiled tensor program, on the scalar program's leaves (entries) and order.

    Entries are gathered into their tensors (a data column's into one row per sample of
    the batch), the backward plan of :mod:`explain.tensorgraph` gives every gradient,
    and they are scattered back in the order of the Graph's parameters.
    """

    def __init__(self, tensor_program: Any, nodes: list[str], parameters: list[str]) -> None:
        from .tensorgraph import BackwardPlan
        from .tensors import entry_name

        self.plan = BackwardPlan(tensor_program)
        program = self.plan.program
        position = {name: i for i, name in enumerate(nodes)}
        self.gather = []
        owner: dict[str, tuple[str, tuple[int, ...]]] = {}
        for name, leaf in program.leaves.items():
            entries = [(index, position[entry_name(name, index) if leaf.shape else name])
                       for index in np.ndindex(leaf.shape)]
            self.gather.append((name, leaf.shape, leaf.batched, entries))
            owner.update({entry_name(name, index) if leaf.shape else name: (name, index)
                          for index in np.ndindex(leaf.shape)})
        self.scatter = [owner[p] for p in parameters]

    def __call__(self, leaves: list[Any], n_samples: int) -> tuple[float, list[float]]:
        values = {}
        for name, shape, batched, entries in self.gather:
            array = np.empty((n_samples if batched else 1, *shape))
            for index, i in entries:
                array[(slice(None), *index)] = leaves[i]
            values[name] = array
        loss, grads = self.plan.loss_and_gradients(values, n_samples)
        return loss, [float(grads[name][index]) for name, index in self.scatter]


def _kind(value: float) -> str:
    return "nan" if math.isnan(value) else "inf"


def _cast(value: Any, dtype: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.astype(dtype)
    return dtype(value)


# -- prediction ---------------------------------------------------------------
def prediction_output(graph: Graph, inputs: Sequence[str], output: str | None = None, source: str = "") -> str:
    """Which stage is "the model's output" for a prediction at ``inputs``.

    ``[train] output`` when given; otherwise the last stage before the loss
    that depends on data but only on the given input columns (so ``y_pred =
    w*x`` is chosen over ``l = (y_pred - y)**2``, which also needs ``y``).
    """
    if output is not None:
        if output not in graph.nodes or graph.nodes[output].is_leaf:
            raise ExplainError(located(source, "[train] output"), message("train_bad_output", name=output))
        return output
    needs: dict[str, set[str]] = {}
    for node in graph:
        if node.kind == "data":
            needs[node.name] = {node.name}
        else:
            needs[node.name] = set().union(*(needs[i] for i in node.inputs)) if node.inputs else set()
    given = set(inputs)
    candidates = [n.name for n in graph.stages if n.name != graph.loss and needs[n.name] and needs[n.name] <= given]
    if not candidates:
        raise ExplainError(located(source, "[train] predict"), message("train_no_output", inputs=", ".join(inputs)))
    return candidates[-1]


def predict(problem: Problem, program: Program, training: Training) -> Prediction | None:
    """The output at ``[train] predict`` with the initial and the final parameters."""
    config = problem.train
    if config is None or not config.predict:
        return None
    graph = program.graph
    output = prediction_output(graph, list(config.predict), config.output, problem.source)
    one = {name: np.array([config.predict.get(name, 0.0)]) for name in problem.data}

    def at(state: Mapping[str, float]) -> float:
        values = program.evaluate({**problem.values, **state, **one}).values[output]
        return float(np.asarray(values).reshape(-1)[0])

    before = at(problem.parameters)
    after = at(training.final_parameters)
    return Prediction(dict(config.predict), output, before, after)


def _short(value: float) -> str:
    return f"{value:g}"


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _json_safe(value: Any) -> Any:
    """JSON has no inf or nan: they become null, wherever they are."""
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _cost_text(graph: Graph) -> str | None:
    """``J = mean(l) + lam/2*w**2`` for a loss written in [cost]; None for a bare reduction."""
    loss = graph.nodes[graph.loss]
    if loss.expr is None or loss.reduction or not graph.reductions:
        return None
    return f"{loss.name} = {loss.text}"
