"""Problems: reading and validating problem files (SPEC §1).

A :class:`Problem` is the validated content of one TOML problem file (or of an
API call): known values, data columns, trainable parameters with their initial
values, the ordered forward stages as small SymPy expressions, the loss, and
the training settings.  Every error names the file, the key and the reason.
"""

from __future__ import annotations

import difflib
import functools
import math
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .errors import ExplainError, located
from .functions import SampleMean, SampleSum, reduction_kind
from .parse import evaluate_value, invalid_name_reason, is_valid_name, parse_expression
from .optimizers import UPDATE_KEYS, UpdateConfig, did_you_mean
from .optimizers import parse as parse_update
from .placement import check_placement, warn_unreached

TOP_LEVEL_KEYS = (
    "title", "description", "seed", "loss", "reduction",
    "values", "data", "parameters", "forward", "cost", "train", "network", "check", "marks",
)
OPTIMIZERS = ("gd", "sgd", "minibatch")
REDUCTIONS = ("sum", "mean")
CHECK_KEYS = ("sigfigs", "consistent_fraction")
#: Significant digits an answer must have, unless ``[check] sigfigs`` or ``--sigfigs`` says otherwise.
DEFAULT_SIGFIGS = 3
TRAIN_KEYS = ("optimizer", "learning_rate", "steps", "epochs", "batch_size", "predict", "output", *UPDATE_KEYS)


@dataclass(frozen=True)
class Stage:
    """One forward stage: ``name = expr``, as the user wrote it (``text``)."""

    name: str
    expr: sp.Expr
    text: str


@dataclass(frozen=True)
class TrainConfig:
    """The ``[train]`` table: how gradient descent is run."""

    optimizer: str = "gd"
    learning_rate: float = 0.01
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    predict: Mapping[str, float] | None = None
    output: str | None = None
    #: The update rule (``update = "adam"`` …), its settings and the learning-rate schedule.
    update: UpdateConfig = field(default_factory=UpdateConfig)

    def __post_init__(self) -> None:
        if self.steps is None and self.epochs is None:
            object.__setattr__(self, "steps", 1)


@dataclass(frozen=True)
class CheckConfig:
    """How ``explain check`` grades this problem: the ``[check]`` and ``[marks]`` tables.

    ``marks`` maps an answer key as the teacher wrote it (``"dE/dw5"``) to its
    points; the checker resolves the keys (they are checked against the graph there).
    """

    sigfigs: int = DEFAULT_SIGFIGS
    consistent_fraction: float = 1.0
    marks: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Problem:
    """A validated problem: everything needed to build its Graph."""

    title: str
    stages: list[Stage]
    parameters: dict[str, float]
    values: dict[str, float] = field(default_factory=dict)
    data: dict[str, np.ndarray] = field(default_factory=dict)
    loss: str = ""
    reduction: str = "sum"
    description: str = ""
    train: TrainConfig | None = None
    seed: int | None = None
    source: str = "<problem>"
    check: CheckConfig = field(default_factory=CheckConfig)
    #: The shape of each vector or matrix, leaf or stage, by the name the user wrote
    #: (``{"W1": (2, 2), "z1": (2,)}``); its entries are the scalar leaves and stages
    #: ``W1_0_0`` … (:mod:`explain.tensors`).  Kept for the matrix-form derivation.
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: The tensor stages as written, in order, before their expansion into entries
    #: (``{"z1": "W1 @ x + b1"}``): the matrix-form derivation reads them
    #: (:mod:`explain.tensorgraph`).  Scalar stages keep their text on :class:`Stage`.
    tensor_texts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.loss and self.stages:
            self.loss = self.stages[-1].name

    @property
    def n_samples(self) -> int | None:
        """The number of samples of a data problem, or None."""
        if not self.data:
            return None
        return len(next(iter(self.data.values())))

    @property
    def symbols(self) -> dict[str, sp.Symbol]:
        """Every name of the problem and its SymPy symbol."""
        names = [*self.parameters, *self.values, *self.data, *(s.name for s in self.stages)]
        return {n: sp.Symbol(n, real=True) for n in names}

    def with_parameters(self, parameters: Mapping[str, float]) -> Problem:
        """A copy of the problem with other parameter values (same structure)."""
        from dataclasses import replace

        unknown = set(parameters) - set(self.parameters)
        if unknown:
            raise ExplainError(self.source, f"unknown parameter(s): {', '.join(sorted(unknown))}")
        return replace(self, parameters={**self.parameters, **{k: float(v) for k, v in parameters.items()}})


def load(path: str | Path) -> Problem:
    """Read and validate a problem file.

    Raises :class:`ExplainError` naming the file, the key and the reason when
    anything is wrong with it.
    """
    from .files import read_input  # regular files only: a FIFO would block forever

    return loads(read_input(path), source=str(Path(path)))


def loads(text: str, source: str = "<problem>") -> Problem:
    """Parse and validate the text of a problem file."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExplainError(source, f"not valid TOML: {exc}") from None
    return from_dict(raw, source=source)


def from_dict(raw: Mapping[str, Any], source: str = "<problem>") -> Problem:
    """Validate a problem given as a dict with the layout of a problem file."""
    reader = _Reader(source)
    return reader.read(raw)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self._rng: np.random.Generator | None = None
        self.seed: int | None = None
        # Vectors and matrices: their shapes, and their entries' symbols for TensorBuilder.
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.tensors: dict[str, np.ndarray] = {}
        self.leaf_tensors: set[str] = set()
        self.tensor_texts: dict[str, str] = {}
        # Stages the reader made (a composite argument of softmax …): never reported as unreached.
        self.lifted: set[str] = set()
        self.data: dict[str, np.ndarray] = {}
        self.defined: dict[str, Any] = {}

    def where(self, key: str) -> str:
        return located(self.source, key)

    def fail(self, key: str, reason: str) -> ExplainError:
        return ExplainError(self.where(key), reason)

    def rng(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def read(self, raw: Mapping[str, Any]) -> Problem:
        check_placement(raw, self.where)
        for key in raw:
            if key not in TOP_LEVEL_KEYS:
                hint = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.fail(key, f"unknown key{suggestion}; allowed keys: {', '.join(TOP_LEVEL_KEYS)}")
        seed = raw.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise self.fail("seed", "must be a non-negative whole number")
        self.seed = seed

        raw = dict(raw)
        if "network" in raw:
            from .networks import expand_network

            for key in ("forward", "parameters", "values", "data"):
                if key in raw:
                    raise self.fail(key, "cannot be combined with [network]; the network defines it")
            if "loss" in raw:
                raise self.fail("loss", "the loss is set in [network] (network.loss); remove the top-level key")
            if "reduction" in raw:
                from .i18n import message

                raise self.fail("reduction", message("network_reduction_top"))
            raw.update(expand_network(raw["network"], self.where("[network]")))

        title = self.text(raw, "title", default="Untitled problem")
        description = self.text(raw, "description", default="")
        defined: dict[str, Any] = {}
        values = self.scalars(raw, "values", defined)
        data = self.columns(raw, defined)
        self.data, self.defined = data, defined  # one-hot columns of class labels join them (onehot)
        parameters = self.scalars(raw, "parameters", defined)
        if not parameters:
            raise self.fail("[parameters]", "a problem needs at least one trainable parameter")
        stages = self.stages(raw, [*values, *data, *parameters], values)
        if "cost" in raw:
            if not data:
                raise self.fail("[cost]", "only applies to data problems: it is computed once, after the "
                                          "reduction over the samples of [data]")
            if "reduction" in raw:
                raise self.fail("reduction", "with a [cost] table, write the reduction in it: "
                                             "mean(l) or sum(l) of a per-sample stage l")
            stages += self.cost(raw, [*values, *data, *parameters], stages, set(data), values)
        stage_names = [s.name for s in stages]

        written = [*self.table(raw, "forward"), *self.table(raw, "cost")]
        loss = raw.get("loss", written[-1])
        if isinstance(loss, str) and loss in self.tensors and loss not in self.leaf_tensors:
            from .i18n import message
            from .tensors import shape_text

            raise self.fail("loss" if "loss" in raw else f"[forward] {loss}",
                            message("tensor_loss_shape", name=loss, shape=shape_text(self.shapes[loss])))
        if not isinstance(loss, str) or loss not in stage_names:
            raise self.fail("loss", f"must name one of the [forward] stages ({', '.join(stage_names)}), got {loss!r}")
        if "cost" in raw and loss in raw.get("forward", {}):
            raise self.fail("loss", f"with a [cost] table the loss is one of its stages, not the per-sample "
                                    f"stage {loss!r} (reduce it in [cost] with mean({loss}) or sum({loss}))")
        warn_unreached(stages, loss, self.source, quiet=self.lifted)
        reduction = raw.get("reduction", "sum")
        if reduction not in REDUCTIONS:
            raise self.fail("reduction", f"must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        if reduction != "sum" and not data:
            raise self.fail("reduction", "only applies to data problems (with a [data] table)")
        train = self.train(raw.get("train"), data, stage_names) if "train" in raw else None
        return Problem(
            title=title, description=description, values=values, data=data,
            parameters=parameters, stages=stages, loss=loss, reduction=reduction,
            train=train, seed=seed, source=self.source, check=self.check(raw), shapes=dict(self.shapes),
            tensor_texts=dict(self.tensor_texts),
        )

    def check(self, raw: Mapping[str, Any]) -> CheckConfig:
        """``[check] sigfigs, consistent_fraction`` and ``[marks]`` (answer key = points)."""
        table = raw.get("check", {})
        if not isinstance(table, Mapping):
            raise self.fail("check", "must be a table ([check])")
        for key in table:
            if key not in CHECK_KEYS:
                raise self.fail(f"[check] {key}", f"unknown key; allowed keys: {', '.join(CHECK_KEYS)}")
        sigfigs = table.get("sigfigs", DEFAULT_SIGFIGS)
        if isinstance(sigfigs, bool) or not isinstance(sigfigs, int) or not 1 <= sigfigs <= 12:
            raise self.fail("[check] sigfigs", f"must be a whole number from 1 to 12, got {sigfigs!r}")
        fraction = table.get("consistent_fraction", 1.0)
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
            raise self.fail("[check] consistent_fraction", f"must be a number from 0 to 1, got {fraction!r}")
        marks = raw.get("marks", {})
        if not isinstance(marks, Mapping):
            raise self.fail("marks", "must be a table ([marks]) of answer keys and points")
        for key, points in marks.items():
            if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points) \
                    or points < 0:
                raise self.fail(f"[marks] {key}", f"must be a number of points (0 or more), got {points!r}")
        return CheckConfig(sigfigs, float(fraction), {k: float(v) for k, v in marks.items()})

    def text(self, raw: Mapping[str, Any], key: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, "must be text")
        if len(value) > 10_000:
            raise self.fail(key, "is too long (at most 10,000 characters)")
        return value

    def table(self, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = raw.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a table ([{key}]), not {type(value).__name__}")
        return value

    def new_name(self, section: str, name: str, defined: Mapping[str, Any]) -> None:
        where = f"[{section}] {name}"
        if not is_valid_name(name):
            raise self.fail(where, invalid_name_reason(name))
        if name in defined:
            raise self.fail(where, "is defined twice (names must be unique across values, data, parameters and stages)")

    def scalars(self, raw: Mapping[str, Any], section: str, defined: dict[str, Any]) -> dict[str, float]:
        result: dict[str, float] = {}
        for name, value in self.table(raw, section).items():
            self.new_name(section, name, defined)
            where = self.where(f"[{section}] {name}")
            if isinstance(value, list):
                self.tensor_leaf(name, value, where, defined, result)
                continue
            random = self.random_tensor(value, where)
            if random is not None:  # "randn(3, 4)": a random matrix, drawn from the file's seed
                self.tensor_leaf(name, random.tolist(), where, defined, result)
                continue
            number = self.number(value, where, defined)
            if isinstance(number, np.ndarray):
                raise ExplainError(where, "must be a single number; lists of samples belong in [data]")
            result[name] = number
            defined[name] = number
        return result

    def tensor_leaf(self, name: str, value: list[Any], where: str, defined: dict[str, Any],
                    result: dict[str, float]) -> None:
        """A vector or matrix: one scalar leaf per entry (``W1_0_1``), its shape kept."""
        from .i18n import message
        from .tensors import entry_label, entry_name, read_nested, symbol_array

        array = read_nested(value, where)
        for index in np.ndindex(array.shape):  # row-major, as the list is written
            entry = entry_name(name, index)
            if entry in defined:
                raise ExplainError(where, message("tensor_entry_taken", entry=entry_label(name, index), name=name,
                                                  internal=entry))
            result[entry] = defined[entry] = float(array[index])
        self.shapes[name] = array.shape
        self.tensors[name] = symbol_array(name, array.shape)
        self.leaf_tensors.add(name)
        defined[name] = array  # the name is taken, so that no later table defines it again

    def random_tensor(self, value: Any, where: str, data: bool = False) -> np.ndarray | None:
        """``"randn(3, 4)"`` or ``"0.1*rand(4)"`` drawn from the seeded generator, in file order; else None.

        In [data] (``data``) only a matrix is read here, as one vector per sample:
        ``"randn(50)"`` stays a value expression (its own, larger, limit).
        """
        from .parse import MAX_VALUES
        from .tensors import MAX_ENTRIES, draw_random, random_shape

        if not isinstance(value, str) or (data and "," not in value):
            return None
        spec = random_shape(value, where, limit=MAX_VALUES if data else MAX_ENTRIES)
        return None if spec is None else draw_random(spec, self.rng())

    def number(self, value: Any, where: str, defined: Mapping[str, Any]) -> Any:
        if isinstance(value, bool):
            raise ExplainError(where, "must be a number, not true/false")
        if isinstance(value, (int, float)):
            if not math.isfinite(value):
                raise ExplainError(where, f"must be finite, got {value}")
            return float(value)
        if isinstance(value, str):
            return evaluate_value(value, defined, where, self.rng)
        if isinstance(value, list):
            raise ExplainError(where, "must be a single number; lists of samples belong in [data]")
        raise ExplainError(where, f"must be a number or an expression in quotes, not {type(value).__name__}")

    def columns(self, raw: Mapping[str, Any], defined: dict[str, Any]) -> dict[str, np.ndarray]:
        result: dict[str, np.ndarray] = {}
        length: int | None = None
        for name, value in self.table(raw, "data").items():
            self.new_name("data", name, defined)
            where = self.where(f"[data] {name}")
            if isinstance(value, list) and value and isinstance(value[0], list):
                length = self.vector_column(name, value, where, length, defined, result)
                continue
            random = self.random_tensor(value, where, data=True)
            if random is not None and random.ndim == 2:  # "randn(5, 4)": 5 samples of a vector of 4
                length = self.vector_column(name, random.tolist(), where, length, defined, result)
                continue
            if random is not None:  # "randn(3, 4, 5)" was refused; one count has no comma
                column = random
            elif isinstance(value, list):
                if not value:
                    raise ExplainError(where, "is an empty list")
                entries = [self.number(v, f"{where}[{i}]", {}) for i, v in enumerate(value)]
                for i, entry in enumerate(entries):
                    if np.ndim(entry) != 0:  # [1, "randn(3)"]: a list inside the list
                        raise ExplainError(f"{where}[{i}]", "must give a single number (one value per sample)")
                column = np.array(entries, dtype=float)
                if column.ndim != 1:
                    raise ExplainError(where, "must be a flat list of numbers")
            else:
                column = np.asarray(self.number(value, where, defined), dtype=float)
                if column.ndim == 0:
                    if length is None:
                        raise ExplainError(where, "gives a single number; a data column needs one value per sample")
                    column = np.full(length, float(column))
            if length is not None and len(column) != length:
                raise ExplainError(where, f"has {len(column)} values but the columns before it have {length}")
            length = len(column)
            result[name] = column
            defined[name] = column
        return result

    def vector_column(self, name: str, value: list[Any], where: str, length: int | None,
                      defined: dict[str, Any], result: dict[str, np.ndarray]) -> int:
        """A data column of one vector per sample (each row a sample): entry j is the column ``x_j``."""
        from .i18n import message
        from .parse import MAX_VALUES
        from .tensors import entry_label, entry_name, read_nested, symbol_array

        rows = read_nested(value, where, limit=MAX_VALUES)
        if rows.ndim != 2:
            raise ExplainError(where, message("tensor_list_mixed"))
        if length is not None and len(rows) != length:
            raise ExplainError(where, f"has {len(rows)} values but the columns before it have {length}")
        for j in range(rows.shape[1]):
            entry = entry_name(name, (j,))
            if entry in defined:
                raise ExplainError(where, message("tensor_entry_taken", entry=entry_label(name, (j,)), name=name,
                                                  internal=entry))
            result[entry] = defined[entry] = np.ascontiguousarray(rows[:, j])
        self.shapes[name] = (rows.shape[1],)
        self.tensors[name] = symbol_array(name, (rows.shape[1],))
        self.leaf_tensors.add(name)
        defined[name] = rows  # the name is taken, so that no later table defines it again
        return len(rows)

    def stages(self, raw: Mapping[str, Any], leaves: list[str], constants: Mapping[str, float]) -> list[Stage]:
        table = self.table(raw, "forward")
        if not table:
            raise self.fail("[forward]", "a problem needs at least one forward stage")
        symbols = {n: sp.Symbol(n, real=True) for n in leaves}
        for name in table:  # before the order check, which would call a vector W used early "defined after"
            if name in self.tensors:
                raise self.fail(f"[forward] {name}", "is defined twice (names must be unique across values, data, "
                                                     "parameters and stages)")
        later = set(table)
        result: list[Stage] = []
        for name, text in table.items():
            key = f"[forward] {name}"
            if not is_valid_name(name):
                raise self.fail(key, invalid_name_reason(name))
            if name in symbols:
                raise self.fail(key, "is defined twice (names must be unique across values, data, parameters and stages)")
            if isinstance(text, (int, float)) and not isinstance(text, bool):
                text = repr(text)
            if not isinstance(text, str):
                raise self.fail(key, "must be an expression in quotes")
            later.discard(name)
            for other in later & _words(text):
                if _mentions(text, other):
                    # A stage that uses a later stage (or itself) would be a cycle.
                    raise self.fail(key, f"uses {other!r}, which is defined after it; stages must be in order (no cycles)")
            if _mentions(text, name):
                raise self.fail(key, "uses itself; stages must not form cycles")
            from .tensors import uses_tensors

            if uses_tensors(text, self.tensors, _words(text), symbols):
                result += self.tensor_stage(name, text, key, symbols, constants, reserved=table.keys())
                continue
            expr = parse_expression(text, symbols, self.where(key))
            result.append(Stage(name, expr, text))
            symbols[name] = sp.Symbol(name, real=True)
        return result

    def tensor_stage(self, name: str, text: str, key: str, symbols: dict[str, sp.Expr],
                     constants: Mapping[str, float], reducible: Collection[str] = (),
                     reserved: Collection[str] | None = None) -> list[Stage]:
        """A stage built over vectors and matrices: one scalar stage per entry of its value.

        In [forward] (``reserved``: the names of the table's stages) a composite argument
        of softmax, log_softmax, logsumexp or cross_entropy becomes a stage of its own
        first, ``logits_<stage>`` (see :data:`~explain.tensors.WHOLE_VECTOR_FUNCTIONS`);
        the same argument written twice is one stage.
        """
        from .i18n import message
        from .tensors import build, composite_arguments, entry_label, entry_name, symbol_array, with_names

        stages: list[Stage] = []
        parts = composite_arguments(text, symbols) if reserved is not None else []
        if parts:
            own: dict[str, str] = {}
            for _, _, part in parts:
                if part not in own:
                    own[part] = _free_name(f"logits_{name}", {*symbols, *self.tensors, *reserved, *own.values()},
                                           sep="")
                    made = self.tensor_stage(own[part], part, key, symbols, constants, reserved=reserved)
                    self.lifted.update(stage.name for stage in made)
                    stages += made
            text = with_names(text, parts, [own[part] for _, _, part in parts])
        value = build(text, symbols, self.tensors, constants, self.where(key), reducible, self.onehot)
        self.tensor_texts[name] = text
        if value.ndim == 0:
            symbols[name] = sp.Symbol(name, real=True)
            return [*stages, Stage(name, value[()], text)]
        for index in np.ndindex(value.shape):
            entry = entry_name(name, index)
            if entry in symbols:
                raise self.fail(key, message("tensor_entry_taken", entry=entry_label(name, index), name=name,
                                             internal=entry))
            stages.append(Stage(entry, value[index], f"({text}){entry_label('', index)}"))
            symbols[entry] = sp.Symbol(entry, real=True)
        self.shapes[name] = value.shape
        self.tensors[name] = symbol_array(name, value.shape)
        return stages

    def onehot(self, name: str, classes: int) -> np.ndarray | None:
        """The one-hot columns ``label_0 … label_{K-1}`` of a [data] column of class numbers, or None.

        ``cross_entropy(z, label)`` with ``label`` a column of whole numbers is
        −Σ_k label_k·log softmax(z)_k, so that the expansion stays a sum of entries
        (the scalar engine has no indicator function); the columns are data like any other.
        """
        from .i18n import message
        from .tensors import entry_label, entry_name, symbol_array

        column = self.data.get(name)
        if column is None or name in self.shapes:
            return None
        bad = [i for i, v in enumerate(column) if v != int(v) or not 0 <= v < classes]
        if bad:
            raise ValueError(message("tensor_label_column", name=name, i=bad[0], value=column[bad[0]],
                                     last=classes - 1))
        for k in range(classes):
            entry = entry_name(name, (k,))
            hot = (column == k).astype(float)
            if entry in self.data and np.array_equal(self.data[entry], hot):
                continue  # the same labels, one-hot already
            if entry in self.defined or entry in self.data:
                raise ValueError(message("tensor_entry_taken", entry=entry_label(name, (k,)), name=name,
                                         internal=entry))
            self.data[entry] = hot
        return symbol_array(name, (classes,))

    def cost(self, raw: Mapping[str, Any], leaves: list[str], stages: list[Stage], data: set[str],
             constants: Mapping[str, float]) -> list[Stage]:
        """The ``[cost]`` stages: computed once, after reducing per-sample stages with mean() or sum().

        A reduction inside a larger formula (``J = "mean(l) + lam*w**2"``) becomes a
        stage of its own (``mean_l``), so that the derivation shows the data part's
        reduction as its own step, with ∂J/∂l_i = 1/n written out.
        """
        table = self.table(raw, "cost")
        if not table:
            raise self.fail("[cost]", "is empty; write the cost, such as J = \"mean(l) + lam/2*w**2\"")
        per_sample = set(data)
        for stage in stages:
            if any(s.name in per_sample for s in stage.expr.free_symbols):
                per_sample.add(stage.name)
        symbols = {n: sp.Symbol(n, real=True) for n in [*leaves, *(s.name for s in stages)]}
        taken = set(symbols) | set(table)
        later = set(table)
        result: list[Stage] = []
        for name, text in table.items():
            key = f"[cost] {name}"
            if not is_valid_name(name):
                raise self.fail(key, "is not a valid name (letters, digits and '_', starting with a letter; not a function or constant name)")
            if name in symbols or name in self.tensors:
                raise self.fail(key, "is defined twice (names must be unique across values, data, parameters and stages)")
            if not isinstance(text, str):
                raise self.fail(key, "must be an expression in quotes")
            later.discard(name)
            for other in [*later, name]:
                if _mentions(text, other):
                    raise self.fail(key, f"uses {other!r}, which is not defined before it; stages must be in order (no cycles)")
            from .tensors import uses_tensors

            if uses_tensors(text, self.tensors, _words(text), symbols):
                # lam*norm2(W1): tensors after the reduction, built entry by entry as in [forward];
                # mean(l) of a per-sample stage stays the reduction over the samples.
                built = self.tensor_stage(name, text, key, dict(symbols), constants, reducible=per_sample)
                lifted: dict[sp.Expr, sp.Symbol] = {}
                for stage in built:
                    expr = self.reduced(key, stage.expr, per_sample, taken, symbols, result, lifted,
                                        whole=len(built) == 1)
                    result.append(Stage(stage.name, expr, stage.text))
                    symbols[stage.name] = sp.Symbol(stage.name, real=True)
                continue
            expr = parse_expression(text, symbols, self.where(key), reducible=per_sample)
            expr = self.reduced(key, expr, per_sample, taken, symbols, result, {}, whole=True)
            result.append(Stage(name, expr, text))
            symbols[name] = sp.Symbol(name, real=True)
        return result

    def reduced(self, key: str, expr: sp.Expr, per_sample: set[str], taken: set[str], symbols: dict[str, sp.Expr],
                result: list[Stage], lifted: dict[sp.Expr, sp.Symbol], whole: bool) -> sp.Expr:
        """A [cost] expression with each reduction inside a larger formula lifted into a stage of its own.

        ``whole``: a stage that is exactly one reduction (``L = "mean(l)"``) stays as it is.
        """
        reductions = sorted(expr.atoms(SampleSum, SampleMean), key=str)
        bare = expr.xreplace({r: sp.Dummy() for r in reductions})
        loose = sorted(s.name for s in bare.free_symbols if s.name in per_sample)
        if loose:
            from .tensors import entry_name

            owner = next((t for t, shape in self.shapes.items()
                          if any(entry_name(t, i) == loose[0] for i in np.ndindex(shape))), None)
            if owner is not None:  # an entry of a per-sample vector: name the vector the user wrote
                raise self.fail(key, f"{owner!r} has one vector per sample; reduce it to one number per "
                                     f"sample in [forward] (l = \"sum({owner})\"), then use mean(l) or sum(l) in [cost]")
            raise self.fail(key, f"{loose[0]!r} has one value per sample; in [cost] use it through "
                                 f"mean({loose[0]}) or sum({loose[0]})")
        if reductions and not (whole and expr in reductions):
            for r in reductions:
                if r in lifted:
                    continue
                kind = reduction_kind(r)
                own = _free_name(f"{kind}_{r.args[0]}", taken)
                taken.add(own)
                result.append(Stage(own, r, f"{kind}({r.args[0]})"))
                symbols[own] = lifted[r] = sp.Symbol(own, real=True)
            expr = expr.xreplace(lifted)
        return expr

    def train(self, raw: Any, data: Mapping[str, np.ndarray], stages: list[str]) -> TrainConfig:
        if not isinstance(raw, Mapping):
            raise self.fail("train", "must be a table ([train])")
        for key in raw:
            if key not in TRAIN_KEYS:
                raise self.fail(f"[train] {key}", f"unknown key{did_you_mean(key, TRAIN_KEYS)}; allowed keys: "
                                                  f"{', '.join(TRAIN_KEYS)}")
        update = parse_update(raw, self.fail)
        optimizer = raw.get("optimizer", "gd")
        if optimizer not in OPTIMIZERS:
            raise self.fail("[train] optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        rate = raw.get("learning_rate", 0.01)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate <= 0:
            raise self.fail("[train] learning_rate", f"must be a positive number, got {rate!r}")
        counts: dict[str, int | None] = {}
        for key in ("steps", "epochs", "batch_size"):
            value = raw.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10_000_000):
                raise self.fail(f"[train] {key}", f"must be a whole number between 1 and 10,000,000, got {value!r}")
            counts[key] = value
        if counts["steps"] is not None and counts["epochs"] is not None:
            raise self.fail("[train]", "give either steps or epochs, not both")
        if optimizer in ("sgd", "minibatch") and not data:
            raise self.fail("[train] optimizer", f"{optimizer!r} needs a data problem (a [data] table); use 'gd'")
        if optimizer == "minibatch" and counts["batch_size"] is None:
            raise self.fail("[train] batch_size", "is required for the minibatch optimizer")
        predict = raw.get("predict")
        if predict is not None:
            if not isinstance(predict, Mapping) or not predict:
                raise self.fail("[train] predict", "must be a table of inputs, such as { x = 4 }")
            for key, value in predict.items():
                if key not in data:
                    raise self.fail(f"[train] predict {key}", "must name a [data] column")
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise self.fail(f"[train] predict {key}", "must be a number")
                if not math.isfinite(value):
                    from .i18n import message

                    raise self.fail(f"[train] predict {key}", message("finite_predict", value=value))
            predict = {k: float(v) for k, v in predict.items()}
        output = raw.get("output")
        if output is not None and output not in stages:
            raise self.fail("[train] output", f"must name a [forward] stage, got {output!r}")
        return TrainConfig(
            optimizer=optimizer, learning_rate=float(rate), steps=counts["steps"], epochs=counts["epochs"],
            batch_size=counts["batch_size"], predict=predict, output=output, update=update,
        )


def _free_name(wanted: str, taken: set[str], sep: str = "_") -> str:
    """``wanted``, or ``wanted_2``, ``wanted_3`` … when it is taken (``sep=""``: ``wanted2`` …,
    for a tensor, whose entries are ``name_0``, ``name_1`` …)."""
    name, k = wanted, 1
    while name in taken:
        k += 1
        name = f"{wanted}{sep}{k}"
    return name


def _mentions(text: str, name: str) -> bool:
    # The words of the text, once per text: a [network] of 1,000 units asks
    # about every later stage for each stage (millions of questions).
    return name in _words(text)


@functools.lru_cache(maxsize=64)
def _words(text: str) -> frozenset[str]:
    import re

    return frozenset(re.findall(r"[A-Za-z0-9_]+", text))
