"""Update rules (plain, momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW) and learning-rate schedules.

Why a table of small rules?  Each optimizer is three things a student needs to
see side by side: the state it keeps (its initial value), the update as
formulas, and the same formulas with the numbers substituted.  One
:class:`Rule` per optimizer holds all three, so adding one is one entry.

The arithmetic follows torch.optim's single-tensor code (torch 2.x,
``_single_tensor_sgd``/``_adagrad``/``_rmsprop``/``_adam``) operation by
operation, in float64 NumPy, so that ``explain.optim_torch`` can hold every
step to 1e-12 against torch.optim itself:

* weight decay is L2, added to the gradient (``g + λ·w``), except AdamW's,
  which shrinks the parameter first (``w·(1 − η·λ)``, decoupled);
* SGD's momentum buffer is the gradient itself on the first step (not
  ``(1 − τ)·g``), then ``μ·v + (1 − τ)·g``; Nesterov steps along ``g + μ·v``;
* AdaGrad and RMSProp add ε *outside* the square root (``√s + ε``); d2l adds
  it inside (``√(s + ε)``), offered as ``eps_placement = "d2l"``;
* Adam divides by the bias corrections as ``(η / (1 − β₁ᵗ))·m / (√v / √(1 − β₂ᵗ) + ε)``,
  which is ``η·m̂ / (√v̂ + ε)`` with ``m̂ = m / (1 − β₁ᵗ)``, ``v̂ = v / (1 − β₂ᵗ)``.

Schedules change the learning rate once per epoch (the place where torch
code calls ``scheduler.step()``; for ``gd`` an epoch is one update), using
torch's recursive forms so the rates agree to the last bit in most cases.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .i18n import message

UPDATES = ("plain", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "step", "exponential", "cosine")
EPS_PLACEMENTS = ("torch", "d2l")
SCHEDULE_KEYS = ("schedule", "step_size", "gamma", "T_max", "eta_min")

State = dict[str, np.ndarray]


# -- settings -----------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One ``[train]`` key of an update rule: torch.optim's name, default and meaning."""

    key: str
    default: Any
    kind: str  # "fraction" (0 ≤ x ≤ 1), "unit" (0 ≤ x < 1), "nonnegative", "bool", "betas", "placement"
    symbol: str


SETTINGS = {s.key: s for s in (
    Setting("momentum", None, "nonnegative", "μ"),
    Setting("dampening", 0.0, "fraction", "τ"),
    Setting("nesterov", False, "bool", ""),
    Setting("weight_decay", 0.0, "nonnegative", "λ"),
    Setting("alpha", 0.99, "fraction", "α"),
    Setting("eps", 1e-8, "nonnegative", "ε"),
    Setting("centered", False, "bool", ""),
    Setting("lr_decay", 0.0, "nonnegative", "δ"),
    Setting("initial_accumulator_value", 0.0, "nonnegative", "s₀"),
    Setting("betas", (0.9, 0.999), "betas", "β₁, β₂"),
    Setting("amsgrad", False, "bool", ""),
    Setting("eps_placement", "torch", "placement", ""),
)}


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule, keyed like torch.optim.lr_scheduler (StepLR, ExponentialLR, CosineAnnealingLR)."""

    kind: str = "constant"
    step_size: int | None = None
    gamma: float | None = None
    T_max: int | None = None
    eta_min: float = 0.0

    def rates(self, base: float, epochs: int) -> list[float]:
        """The learning rate of each epoch 0 … epochs − 1, by torch's recursive formulas."""
        rates = [base]
        for e in range(1, epochs):
            prev = rates[-1]
            if self.kind == "step":
                rates.append(prev * self.gamma if e % self.step_size == 0 else prev)  # type: ignore[operator]
            elif self.kind == "exponential":
                rates.append(prev * self.gamma)  # type: ignore[operator]
            elif self.kind == "cosine":
                rates.append(_cosine(prev, base, e, self.T_max, self.eta_min))  # type: ignore[arg-type]
            else:
                rates.append(prev)
        return rates

    def formula(self, latex: bool = False) -> str | None:
        """The schedule as text: ``η_e = η₀·γ^⌊e/s⌋`` … (or LaTeX); None when constant."""
        if latex and self.kind == "step":
            return rf"\eta_e = \eta_0 \gamma^{{\lfloor e / {self.step_size} \rfloor}},\ \gamma = {self.gamma:g}"
        if latex and self.kind == "exponential":
            return rf"\eta_e = \eta_0 \gamma^e,\ \gamma = {self.gamma:g}"
        if latex and self.kind == "cosine":
            return (rf"\eta_e = \eta_{{\min}} + (\eta_0 - \eta_{{\min}})\,\frac{{1 + \cos(\pi e / {self.T_max})}}{{2}},"
                    rf"\ \eta_{{\min}} = {self.eta_min:g}")
        if latex:
            return None
        if self.kind == "step":
            return f"η_e = η₀·γ^⌊e / {self.step_size}⌋ with γ = {self.gamma:g}"
        if self.kind == "exponential":
            return f"η_e = η₀·γ^e with γ = {self.gamma:g}"
        if self.kind == "cosine":
            return f"η_e = η_min + (η₀ − η_min)·(1 + cos(π·e / {self.T_max}))/2 with η_min = {self.eta_min:g}"
        return None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for key in ("step_size", "gamma", "T_max"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.kind == "cosine":
            d["eta_min"] = self.eta_min
        return d


def _cosine(prev: float, base: float, e: int, T: int, low: float) -> float:
    """torch's CosineAnnealingLR.get_lr (the recursive form, periodic beyond T_max)."""
    if (e - 1 - T) % (2 * T) == 0:
        return prev + (base - low) * (1 - math.cos(math.pi / T)) / 2
    return (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (prev - low) + low


@dataclass(frozen=True)
class UpdateConfig:
    """The update rule of ``[train]``: its name, its settings (defaults filled in) and the schedule."""

    update: str = "plain"
    settings: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)
    #: Another step function for this rule: a student's mistake, replayed by explain.later_steps.
    step: Any = field(default=None, compare=False, repr=False)

    @property
    def rule(self) -> Rule:
        from dataclasses import replace

        rule = RULES[self.update]
        return rule if self.step is None else replace(rule, step=self.step)

    def __getitem__(self, key: str) -> Any:
        return self.settings[key]

    def to_dict(self) -> dict[str, Any]:
        settings = {k: list(v) if isinstance(v, tuple) else v for k, v in self.settings.items()}
        return {"update": self.update, "torch": self.rule.torch, "settings": settings,
                "schedule": self.schedule.to_dict()}


# -- the rules ----------------------------------------------------------------
@dataclass(frozen=True)
class Formula:
    """One line of an update: ``lhs ← text`` (and LaTeX), and the numbers substituted.

    ``numbers`` is a ``str.format`` template over the step's named numbers
    (the settings, the state before, the intermediate results); ``when``
    says whether the line applies (weight decay only when λ ≠ 0, …).
    """

    lhs: str
    text: str
    latex: str
    numbers: str
    when: Callable[[UpdateConfig, int], bool] = lambda c, t: True


@dataclass(frozen=True)
class Rule:
    """One optimizer: the keys it takes, its state with initial values, the step, the formulas."""

    name: str
    torch: str
    keys: tuple[str, ...]
    state: tuple[str, ...]
    init: Callable[[np.ndarray, UpdateConfig], State]
    step: Callable[[np.ndarray, np.ndarray, State, int, float, UpdateConfig], tuple[np.ndarray, State, dict[str, Any]]]
    formulas: tuple[Formula, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def lines(self, config: UpdateConfig, t: int) -> list[Formula]:
        return [f for f in self.formulas if f.when(config, t)]


def _decay(c: UpdateConfig, t: int) -> bool:
    return c.settings.get("weight_decay", 0.0) != 0


def _l2(w: np.ndarray, g: np.ndarray, c: UpdateConfig) -> np.ndarray:
    """torch's ``grad.add(param, alpha=weight_decay)``: L2 weight decay folded into the gradient."""
    wd = c.settings.get("weight_decay", 0.0)
    return g + wd * w if wd != 0 else g


def _lerp(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp's two forms (which one depends on the weight), for equal rounding."""
    if weight < 0.5:
        return a + weight * (b - a)
    return b - (b - a) * (1 - weight)


def _zeros(*names: str) -> Callable[[np.ndarray, UpdateConfig], State]:
    return lambda w, c: {n: np.zeros_like(w) for n in names}


_WD = Formula("g", "g ← g + λ·w", r"g \leftarrow g + \lambda w", "g = {g} + {lam}·{w0} = {d}", _decay)


def _square(d: np.ndarray) -> np.ndarray:
    return d * d


def _sgd_step(w, g, s, t, lr, c, sign=1.0):
    d = _l2(w, g, c)
    parts: dict[str, Any] = {"g": g, "d": d}
    if c.update == "plain":
        new = w + (-lr) * d
        return new, {}, {**parts, "w": new}
    mu, damp = c["momentum"], c.settings.get("dampening", 0.0)
    v = d.copy() if t == 1 else s["v"] * (sign * mu) + (1 - damp) * d  # sign −1: a student's mistake
    direction = d + mu * v if c.update == "nesterov" else v
    new = w + (-lr) * direction
    return new, {"v": v}, {**parts, "v": v, "u": direction, "w": new}


PLAIN = Rule(
    "plain", "torch.optim.SGD", ("weight_decay",), (), _zeros(), _sgd_step,
    (_WD, Formula("w", "w ← w − η·g", r"w \leftarrow w - \eta\, g", "w = {w0} − {eta}·{d} = {w}")),
)
_FIRST = Formula("v", "v ← g (first step: the buffer starts as the gradient)", r"v \leftarrow g",
                 "v = {v}", lambda c, t: t == 1)
_LATER = Formula("v", "v ← μ·v + (1 − τ)·g", r"v \leftarrow \mu v + (1 - \tau) g",
                 "v = {mu}·{v0} + (1 − {tau})·{d} = {v}", lambda c, t: t > 1)
MOMENTUM = Rule(
    "momentum", "torch.optim.SGD(momentum=μ)", ("momentum", "dampening", "weight_decay", "nesterov"), ("v",),
    _zeros("v"), _sgd_step,
    (_WD, _FIRST, _LATER, Formula("w", "w ← w − η·v", r"w \leftarrow w - \eta\, v", "w = {w0} − {eta}·{v} = {w}")),
)
NESTEROV = Rule(
    "nesterov", "torch.optim.SGD(momentum=μ, nesterov=True)", ("momentum", "weight_decay"), ("v",),
    _zeros("v"), _sgd_step,
    (_WD, _FIRST, _LATER,
     Formula("w", "w ← w − η·(g + μ·v)", r"w \leftarrow w - \eta\,(g + \mu v)",
             "w = {w0} − {eta}·({d} + {mu}·{v}) = {w}")),
)


def _inside(c: UpdateConfig, t: int) -> bool:
    return c.settings.get("eps_placement") == "d2l"


def _outside(c: UpdateConfig, t: int) -> bool:
    return not _inside(c, t)


def _denominator(s: np.ndarray, eps: float, c: UpdateConfig) -> np.ndarray:
    """√s + ε as torch does, or √(s + ε) as d2l does."""
    return np.sqrt(s + eps) if c.settings.get("eps_placement") == "d2l" else np.sqrt(s) + eps


def _adagrad_step(w, g, s, t, lr, c, square=_square):
    d = _l2(w, g, c)
    clr = lr / (1 + (t - 1) * c["lr_decay"])
    acc = s["s"] + square(d)
    den = _denominator(acc, c["eps"], c)
    new = w + (-clr) * (d / den)
    return new, {"s": acc}, {"g": g, "d": d, "s": acc, "den": den, "clr": clr, "w": new}


ADAGRAD = Rule(
    "adagrad", "torch.optim.Adagrad", ("lr_decay", "weight_decay", "initial_accumulator_value", "eps", "eps_placement"),
    ("s",), lambda w, c: {"s": np.full_like(w, c["initial_accumulator_value"])}, _adagrad_step,
    (_WD,
     Formula("η", "η_t ← η / (1 + (t − 1)·δ)", r"\eta_t \leftarrow \eta / (1 + (t-1)\delta)",
             "η_t = {eta} / (1 + {tm1}·{lr_decay}) = {clr}", lambda c, t: c["lr_decay"] != 0),
     Formula("s", "s ← s + g²", r"s \leftarrow s + g^2", "s = {s0} + {d}² = {s}"),
     Formula("w", "w ← w − η·g / (√s + ε)", r"w \leftarrow w - \eta\, \frac{g}{\sqrt{s} + \epsilon}",
             "w = {w0} − {clr}·{d} / (√{s} + {eps}) = {w}", _outside),
     Formula("w", "w ← w − η·g / √(s + ε)", r"w \leftarrow w - \eta\, \frac{g}{\sqrt{s + \epsilon}}",
             "w = {w0} − {clr}·{d} / √({s} + {eps}) = {w}", _inside)),
    defaults={"eps": 1e-10},
)


def _rmsprop_step(w, g, s, t, lr, c, square=_square):
    d = _l2(w, g, c)
    alpha, eps, mu = c["alpha"], c["eps"], c["momentum"]
    sq = s["s"] * alpha + (1 - alpha) * square(d)
    state = {"s": sq}
    parts: dict[str, Any] = {"g": g, "d": d, "s": sq}
    if c["centered"]:
        ga = _lerp(s["gbar"], d, 1 - alpha)
        state["gbar"] = parts["gbar"] = ga
        var = sq + (-1) * (ga * ga)
    else:
        var = sq
    den = _denominator(var, eps, c)
    parts["den"] = den
    if mu > 0:
        b = s["b"] * mu + d / den
        state["b"] = parts["b"] = b
        new = w + (-lr) * b
    else:
        new = w + (-lr) * (d / den)
    parts["w"] = new
    return new, state, parts


def _rms_init(w: np.ndarray, c: UpdateConfig) -> State:
    state = {"s": np.zeros_like(w)}
    if c["centered"]:
        state["gbar"] = np.zeros_like(w)
    if c["momentum"] > 0:
        state["b"] = np.zeros_like(w)
    return state


def _centered(c: UpdateConfig, t: int) -> bool:
    return bool(c["centered"])


def _rms_momentum(c: UpdateConfig, t: int) -> bool:
    return c["momentum"] > 0


RMSPROP = Rule(
    "rmsprop", "torch.optim.RMSprop", ("alpha", "eps", "weight_decay", "momentum", "centered", "eps_placement"),
    ("s", "gbar", "b"), _rms_init, _rmsprop_step,
    (_WD,
     Formula("s", "s ← α·s + (1 − α)·g²", r"s \leftarrow \alpha s + (1 - \alpha) g^2",
             "s = {alpha}·{s0} + (1 − {alpha})·{d}² = {s}"),
     Formula("ḡ", "ḡ ← α·ḡ + (1 − α)·g", r"\bar g \leftarrow \alpha \bar g + (1 - \alpha) g",
             "ḡ = {alpha}·{gbar0} + (1 − {alpha})·{d} = {gbar}", _centered),
     Formula("r", "r ← √(s − ḡ²) + ε", r"r \leftarrow \sqrt{s - \bar g^2} + \epsilon",
             "r = √({s} − {gbar}²) + {eps} = {den}", lambda c, t: _centered(c, t) and _outside(c, t)),
     Formula("r", "r ← √(s − ḡ² + ε)", r"r \leftarrow \sqrt{s - \bar g^2 + \epsilon}",
             "r = √({s} − {gbar}² + {eps}) = {den}", lambda c, t: _centered(c, t) and _inside(c, t)),
     Formula("r", "r ← √s + ε", r"r \leftarrow \sqrt{s} + \epsilon", "r = √{s} + {eps} = {den}",
             lambda c, t: not _centered(c, t) and _outside(c, t)),
     Formula("r", "r ← √(s + ε)", r"r \leftarrow \sqrt{s + \epsilon}", "r = √({s} + {eps}) = {den}",
             lambda c, t: not _centered(c, t) and _inside(c, t)),
     Formula("b", "b ← μ·b + g / r", r"b \leftarrow \mu b + g / r", "b = {mu}·{b0} + {d} / {den} = {b}", _rms_momentum),
     Formula("w", "w ← w − η·b", r"w \leftarrow w - \eta\, b", "w = {w0} − {eta}·{b} = {w}", _rms_momentum),
     Formula("w", "w ← w − η·g / r", r"w \leftarrow w - \eta\, g / r", "w = {w0} − {eta}·{d} / {den} = {w}",
             lambda c, t: not _rms_momentum(c, t))),
    defaults={"momentum": 0.0},
)


def _adam_step(w, g, s, t, lr, c, square=_square, corrected=True):
    b1, b2 = c["betas"]
    eps, wd = c["eps"], c["weight_decay"]
    parts: dict[str, Any] = {"g": g, "w_start": w}
    if c.update == "adamw":
        if wd != 0:
            w = w * (1 - lr * wd)
        d = g
    else:
        d = _l2(w, g, c)
    parts.update(shrunk=w, d=d)
    m = _lerp(s["m"], d, 1 - b1)
    v = s["v"] * b2 + (1 - b2) * square(d)
    bc1, bc2 = (1 - b1 ** t, 1 - b2 ** t) if corrected else (1.0, 1.0)  # not corrected: a student's mistake
    step_size, root = lr / bc1, bc2 ** 0.5
    state = {"m": m, "v": v}
    second = v
    if c["amsgrad"]:
        second = state["vmax"] = parts["vmax"] = np.maximum(s["vmax"], v)
    den = np.sqrt(second) / root + eps
    new = w + (-step_size) * (m / den)
    parts.update(m=m, v=v, bc1=bc1, bc2=bc2, mhat=m / bc1, vhat=second / bc2, rvhat=np.sqrt(second) / root, w=new)
    return new, state, parts


def _adam_init(w: np.ndarray, c: UpdateConfig) -> State:
    state = {"m": np.zeros_like(w), "v": np.zeros_like(w)}
    if c["amsgrad"]:
        state["vmax"] = np.zeros_like(w)
    return state


def _amsgrad(c: UpdateConfig, t: int) -> bool:
    return bool(c["amsgrad"])


def _adam_formulas(decoupled: bool) -> tuple[Formula, ...]:
    wd = (Formula("w", "w ← w·(1 − η·λ)  (decoupled weight decay)", r"w \leftarrow w\,(1 - \eta\lambda)",
                  "w = {w_start}·(1 − {eta}·{lam}) = {shrunk}", _decay) if decoupled else _WD)
    return (
        wd,
        Formula("m", "m ← β₁·m + (1 − β₁)·g", r"m \leftarrow \beta_1 m + (1 - \beta_1) g",
                "m = {b1}·{m0} + (1 − {b1})·{d} = {m}"),
        Formula("v", "v ← β₂·v + (1 − β₂)·g²", r"v \leftarrow \beta_2 v + (1 - \beta_2) g^2",
                "v = {b2}·{v0} + (1 − {b2})·{d}² = {v}"),
        Formula("v_max", "v_max ← max(v_max, v)", r"v_{\max} \leftarrow \max(v_{\max}, v)",
                "v_max = max({vmax0}, {v}) = {vmax}", _amsgrad),
        Formula("m̂", "m̂ ← m / (1 − β₁ᵗ)", r"\hat m \leftarrow m / (1 - \beta_1^t)",
                "m̂ = {m} / (1 − {b1}^{t}) = {mhat}"),
        Formula("v̂", "v̂ ← v / (1 − β₂ᵗ)", r"\hat v \leftarrow v / (1 - \beta_2^t)",
                "v̂ = {v} / (1 − {b2}^{t}) = {vhat}", lambda c, t: not c["amsgrad"]),
        Formula("v̂", "v̂ ← v_max / (1 − β₂ᵗ)", r"\hat v \leftarrow v_{\max} / (1 - \beta_2^t)",
                "v̂ = {vmax} / (1 − {b2}^{t}) = {vhat}", _amsgrad),
        Formula("w", "w ← w − η·m̂ / (√v̂ + ε)", r"w \leftarrow w - \eta\, \frac{\hat m}{\sqrt{\hat v} + \epsilon}",
                "w = {shrunk} − {eta}·{mhat} / (√{vhat} + {eps}) = {w}"),
    )


_ADAM_KEYS = ("betas", "eps", "weight_decay", "amsgrad")
ADAM = Rule("adam", "torch.optim.Adam", _ADAM_KEYS, ("m", "v", "vmax"), _adam_init, _adam_step, _adam_formulas(False))
ADAMW = Rule("adamw", "torch.optim.AdamW", _ADAM_KEYS, ("m", "v", "vmax"), _adam_init, _adam_step,
             _adam_formulas(True), defaults={"weight_decay": 1e-2})

RULES: dict[str, Rule] = {r.name: r for r in (PLAIN, MOMENTUM, NESTEROV, ADAGRAD, RMSPROP, ADAM, ADAMW)}
#: Every key an update rule or a schedule may take in [train].
UPDATE_KEYS = ("update", *SETTINGS, *SCHEDULE_KEYS)


# -- reading [train] ----------------------------------------------------------
def did_you_mean(key: str, known: Sequence[str]) -> str:
    """`` (did you mean 'betas'?)`` for a key close to a known one, else ``""``."""
    hint = difflib.get_close_matches(key, list(known), n=1)
    return f" ({message('parse_did_you_mean', name=hint[0])})" if hint else ""


def parse(raw: Mapping[str, Any], fail: Callable[[str, str], Exception]) -> UpdateConfig:
    """The update rule and schedule of a ``[train]`` table; ``fail(key, reason)`` makes the error to raise."""
    update = raw.get("update", "plain")
    if update not in RULES:
        raise fail("[train] update", message("optim_bad_update", value=update, choices=", ".join(UPDATES))
                   + (did_you_mean(update, UPDATES) if isinstance(update, str) else ""))
    rule = RULES[update]
    for key in raw:
        if key in SETTINGS and key not in rule.keys:
            raise fail(f"[train] {key}", message("optim_key_not_for", update=update, keys=", ".join(rule.keys)))
    settings: dict[str, Any] = {}
    for key in rule.keys:
        setting = SETTINGS[key]
        default = rule.defaults.get(key, setting.default)
        settings[key] = _setting(setting, raw[key], fail) if key in raw else default
    if update == "momentum" and settings.pop("nesterov"):
        update, rule = "nesterov", NESTEROV  # SGD(nesterov=True), spelled the torch way
        if settings.pop("dampening"):
            raise fail("[train] dampening", message("optim_nesterov_dampening"))
    if update in ("momentum", "nesterov") and not settings.get("momentum"):
        raise fail("[train] momentum", message("optim_needs_momentum", update=update))
    for key in rule.keys:
        settings.setdefault(key, rule.defaults.get(key, SETTINGS[key].default))
    return UpdateConfig(update, settings, _schedule(raw, fail))


def _setting(setting: Setting, value: Any, fail: Callable[[str, str], Exception]) -> Any:
    where = f"[train] {setting.key}"
    kind = setting.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise fail(where, message("optim_bad_bool", value=value))
        return value
    if kind == "placement":
        if value not in EPS_PLACEMENTS:
            raise fail(where, message("optim_bad_choice", value=value, choices=", ".join(EPS_PLACEMENTS)))
        return value
    if kind == "betas":
        if not isinstance(value, list) or len(value) != 2:
            raise fail(where, message("optim_bad_betas", value=value))
        return tuple(_number(where + f"[{i}]", v, "unit", fail) for i, v in enumerate(value))
    return _number(where, value, kind, fail)


def _number(where: str, value: Any, kind: str, fail: Callable[[str, str], Exception]) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
    if ok and kind == "fraction":
        ok = value <= 1
    if ok and kind == "unit":
        ok = value < 1
    if not ok:
        raise fail(where, message(f"optim_bad_{kind}", value=value))
    return float(value)


def _schedule(raw: Mapping[str, Any], fail: Callable[[str, str], Exception]) -> Schedule:
    kind = raw.get("schedule", "constant")
    if kind not in SCHEDULES:
        raise fail("[train] schedule", message("optim_bad_choice", value=kind, choices=", ".join(SCHEDULES)))
    wanted = {"constant": (), "step": ("step_size", "gamma"), "exponential": ("gamma",),
              "cosine": ("T_max", "eta_min")}[kind]
    for key in ("step_size", "gamma", "T_max", "eta_min"):
        if key in raw and key not in wanted:
            raise fail(f"[train] {key}", message("optim_key_not_for_schedule", schedule=kind))
    values: dict[str, Any] = {}
    for key in ("step_size", "T_max"):
        if key in wanted:
            value = raw.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(f"[train] {key}", message("optim_needs_count", schedule=kind, value=value))
            values[key] = value
    if "gamma" in wanted:
        gamma = raw.get("gamma", 0.1 if kind == "step" else None)
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not math.isfinite(gamma) or gamma <= 0:
            raise fail("[train] gamma", message("optim_needs_gamma", schedule=kind, value=gamma))
        values["gamma"] = float(gamma)
    if "eta_min" in wanted:
        values["eta_min"] = _number("[train] eta_min", raw.get("eta_min", 0.0), "nonnegative", fail)
    return Schedule(kind, **values)


# -- explanation --------------------------------------------------------------
def number(value: float, precision: int = 6) -> str:
    """A number as printed in a substituted formula; negatives in parentheses after an operator."""
    text = f"{float(value):.{precision}g}"
    return f"({text})" if text.startswith("-") else text


_LATEX = (("m̂", r"\hat m"), ("v̂", r"\hat v"), ("ḡ", r"\bar g"), ("v_max", r"v_{\max}"), ("η_t", r"\eta_t"),
          ("·", r" \cdot "), ("−", "-"), ("²", "^2"), ("max(", r"\max("))


def latex_numbers(text: str) -> str:
    """A substituted line (``v = 0.9·0 + (1 − 0.9)·g² = …``) as LaTeX math, for the LaTeX/PDF printers."""
    import re

    text = re.sub(r"√\(([^()]*)\)", r"\\sqrt{\1}", text)
    text = re.sub(r"√([-+0-9.e]+)", r"\\sqrt{\1}", text)
    for old, new in _LATEX:
        text = text.replace(old, new)
    return re.sub(r"(\d)e([-+]\d+)", lambda mt: rf"{mt.group(1)}\mathrm{{e}}{{{mt.group(2)}}}", text)


def _unwrap(text: str) -> str:
    """No parentheses around a negative number that starts the right side or is the result."""
    import re

    text = re.sub(r"^(\S+ = )\((-[^()]+)\)", r"\1\2", text)
    return re.sub(r"= \((-[^()]+)\)$", r"= \1", text)


def explain_step(config: UpdateConfig, names: Sequence[str], w: np.ndarray, g: np.ndarray, state: State,
                 t: int, lr: float, precision: int = 6) -> list[dict[str, Any]]:
    """Update ``t`` (1-based) for every parameter: each formula line with the numbers substituted.

    Re-runs the rule on the recorded state before the step (the same arithmetic
    as the run), so the numbers shown are the run's own.
    """
    rule = config.rule
    _, _, parts = rule.step(np.asarray(w, dtype=float), np.asarray(g, dtype=float),
                            {k: np.asarray(v, dtype=float) for k, v in state.items()}, t, lr, config)
    settings = config.settings
    b1, b2 = settings.get("betas", (None, None))
    scalars = {"eta": lr, "t": t, "tm1": t - 1, "lam": settings.get("weight_decay"), "mu": settings.get("momentum"),
               "tau": settings.get("dampening", 0.0), "alpha": settings.get("alpha"), "eps": settings.get("eps"),
               "lr_decay": settings.get("lr_decay"), "b1": b1, "b2": b2}
    records = []
    lines = rule.lines(config, t)
    for k, name in enumerate(names):
        numbers = {key: number(v, precision) for key, v in scalars.items() if v is not None}
        numbers["t"] = str(t)
        numbers["tm1"] = str(t - 1)
        numbers["w0"] = number(w[k], precision)
        for key, value in state.items():
            numbers[f"{key}0"] = number(value[k], precision)
        for key, value in parts.items():
            numbers[key] = number(np.asarray(value).reshape(-1)[k] if np.ndim(value) else value, precision)
        rendered = []
        for f in lines:
            text = _unwrap(f.numbers.format(**numbers))
            if f.lhs == "w":  # the parameter by its own name: "x1 = -5 − 0.6·(-1) = -4.4"
                text = name + text[1:]
            rendered.append({"lhs": f.lhs, "formula": f.text, "latex": f.latex, "numbers": text,
                             "numbers_latex": latex_numbers(text)})
        records.append({"parameter": name, "lines": rendered,
                        "state": {key: float(v[k]) for key, v in parts.items()
                                  if key in rule.state and np.ndim(v)}})
    return records


def explanation(training: Any, steps: Sequence[int], precision: int = 6) -> dict[str, Any] | None:
    """The update rule and the chosen steps explained, as records (for every output format).

    ``{"rule": {...}, "formulas": [{"text", "latex"}], "schedule": text, "steps": [{"step", "learning_rate",
    "parameters": [{"parameter", "lines": [{"formula", "latex", "numbers"}]}]}]}``.  Steps beyond the run are
    left out.
    """
    config = training.update
    if config is None:
        return None
    rule = config.rule
    # In the table's order, both variants of a first-step line (the momentum buffer's v ← g).
    shown = [f for f in rule.formulas if f.when(config, 1) or f.when(config, 2)]
    result: dict[str, Any] = {
        "update": config.update, "torch": rule.torch, "settings": config.to_dict()["settings"],
        "formulas": [{"formula": f.text, "latex": f.latex} for f in shown],
        "schedule": config.schedule.formula(), "schedule_latex": config.schedule.formula(latex=True), "steps": [],
    }
    names = training.parameter_names
    for t in sorted(set(steps)):
        if not 1 <= t <= training.steps:
            continue
        before = {k: v[t - 1] for k, v in training.optimizer_state.items()}
        lr = float(training.learning_rates[t - 1])
        result["steps"].append({
            "step": t, "learning_rate": lr,
            "parameters": explain_step(config, names, training.states[t - 1], training.gradients[t - 1],
                                       before, t, lr, precision),
        })
    return result


def explanation_lines(record: Mapping[str, Any], m: Any) -> list[str]:
    """The explanation as plain-text lines (text and, fenced, Markdown)."""
    lines = [m("optim_rule", update=m(f"optim_update_{record['update']}"), torch=record["torch"],
               settings=_settings_text(record["settings"]))]
    lines += ["  " + f["formula"] for f in record["formulas"]]
    if record["schedule"]:
        lines.append(m("optim_schedule", formula=record["schedule"]))
    for step in record["steps"]:
        lines.append("")
        lines.append(m("optim_step", step=step["step"], rate=f"{step['learning_rate']:.6g}"))
        for p in step["parameters"]:
            lines.append(f"  {p['parameter']}:")
            lines += [f"    {line['numbers']}" for line in p["lines"]]
    return lines


def _settings_text(settings: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in settings.items())


def parse_steps(text: str) -> list[int]:
    """``"1,2,10"`` → ``[1, 2, 10]``; ``"none"`` → ``[]``."""
    if text.strip().lower() == "none":
        return []
    steps = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            from .errors import ExplainError

            raise ExplainError("--explain-steps", message("optim_bad_steps", value=part))
        steps.append(int(part))
    return steps


#: The momentum used when ``--compare`` asks for momentum or Nesterov and [train] gives none (d2l's and
#: most courses' value; torch's default 0 would be plain gradient descent).
COMPARE_MOMENTUM = 0.9


def switch(config: UpdateConfig, update: str) -> UpdateConfig:
    """Another update rule with the settings of ``config`` that apply to it, torch's defaults for the rest.

    Used by ``train --compare adam,momentum,plain``: the schedule is kept, so the
    curves differ only in the rule.
    """
    if update not in RULES:
        from .errors import ExplainError

        raise ExplainError("--compare", message("optim_bad_update", value=update, choices=", ".join(UPDATES))
                           + did_you_mean(update, UPDATES))
    rule = RULES[update]
    settings = {k: config.settings.get(k, rule.defaults.get(k, SETTINGS[k].default)) for k in rule.keys}
    if update == "adamw" and config.update != "adamw":
        settings["weight_decay"] = rule.defaults["weight_decay"]  # Adam's L2 0 is not AdamW's default 1e-2
    settings.pop("nesterov", None)
    if update in ("momentum", "nesterov") and not settings.get("momentum"):
        settings["momentum"] = COMPARE_MOMENTUM
    if update == "nesterov":
        settings.pop("dampening", None)
    return UpdateConfig(update, settings, config.schedule)


def explanation_markdown(record: Mapping[str, Any], m: Any) -> str:
    """The explanation in Markdown: the rule's formulas in LaTeX, each step's numbers in a text block."""
    out = [m("optim_rule", update=m(f"optim_update_{record['update']}"), torch=f"`{record['torch']}`",
             settings=_settings_text(record["settings"])), ""]
    out += [f"- ${f['latex']}$" for f in record["formulas"]]
    if record["schedule"]:
        out += ["", m("optim_schedule", formula=record["schedule"])]
    for step in record["steps"]:
        out += ["", "**" + m("optim_step", step=step["step"], rate=f"{step['learning_rate']:.6g}") + "**", "", "```text"]
        for p in step["parameters"]:
            out.append(f"{p['parameter']}:")
            out += [f"  {line['numbers']}" for line in p["lines"]]
        out.append("```")
    return "\n".join(out)


# -- the mistakes students make (diagnosed by explain.later_steps) -------------
def mistakes(config: UpdateConfig) -> list[tuple[str, UpdateConfig]]:
    """The update rule as students get it wrong: ``(code, the rule with that mistake)`` for this config.

    * ``optim_no_bias_correction``: Adam/AdamW without m̂ and v̂ (m and v used as they are);
    * ``optim_momentum_sign``: the momentum subtracted, ``v ← −μ·v + (1 − τ)·g``;
    * ``optim_not_squared``: the squared-gradient average fed g instead of g² (Adam, AdaGrad, RMSProp);
    * ``optim_l2_not_decoupled`` / ``optim_decoupled_not_l2``: AdamW's decay taken as Adam's L2, or the reverse.
    """
    from dataclasses import replace
    from functools import partial

    u = config.update
    out: list[tuple[str, UpdateConfig]] = []
    if u in ("adam", "adamw"):
        out.append(("optim_no_bias_correction", replace(config, step=partial(_adam_step, corrected=False))))
    if u in ("momentum", "nesterov"):
        out.append(("optim_momentum_sign", replace(config, step=partial(_sgd_step, sign=-1.0))))
    step = {"adam": _adam_step, "adamw": _adam_step, "adagrad": _adagrad_step, "rmsprop": _rmsprop_step}.get(u)
    if step is not None:
        out.append(("optim_not_squared", replace(config, step=partial(step, square=lambda d: d))))
    if u in ("adam", "adamw") and config.settings.get("weight_decay"):
        other = "adam" if u == "adamw" else "adamw"
        out.append(("optim_l2_not_decoupled" if u == "adamw" else "optim_decoupled_not_l2",
                    UpdateConfig(other, dict(config.settings), config.schedule)))
    return out
