"""Optimizers: PyTorch's update formulas and defaults are netspec's meaning.

Each record's reference is `step(param, grad, state, lr, attrs) -> (param, state)` on float64
numpy arrays: `state` starts as `{}`, `lr` is the learning rate of this step (after the
schedule), `attrs` the resolved attributes. `apply` clips the gradients of all parameters
together (as `torch.nn.utils.clip_grad_value_` then `clip_grad_norm_` would, before
`optimizer.step()`), then steps each parameter. Weight decay is PyTorch's: an L2 term added to
the gradient (`grad + weight_decay * param`), except AdamW's decoupled `param *= 1 - lr * wd`.
It applies to every trained parameter, biases and batch-norm scales included.
"""

from __future__ import annotations

from typing import Any

from ..ops.base import Attr
from .record import Record, table

OPTIMIZERS, optimizer = table("optimizer")

CLIP_NORM_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6)


def _common(lr: float, weight_decay: float = 0.0) -> list[Attr]:
    return [
        Attr("lr", "float", lr, "learning rate", minimum=0),
        Attr(
            "weight_decay",
            "float",
            weight_decay,
            "L2 penalty: weight_decay * param is added to the gradient",
            minimum=0,
        ),
        Attr(
            "clip_norm",
            "float",
            None,
            "scale all gradients together so that their joint L2 norm is at most this "
            "(torch.nn.utils.clip_grad_norm_)",
            minimum=0,
            exclusive_min=True,
        ),
        Attr(
            "clip_value",
            "float",
            None,
            "clamp every gradient element to [-clip_value, clip_value], before clip_norm "
            "(torch.nn.utils.clip_grad_value_)",
            minimum=0,
            exclusive_min=True,
        ),
    ]


def _eps(default: float) -> Attr:
    return Attr("eps", "float", default, "added to the denominator", minimum=0)


def _beta(name: str, default: float, doc: str) -> Attr:
    return Attr(name, "float", default, doc, minimum=0, maximum=1, exclusive_max=True)


def clip_gradients(grads: list, a: dict[str, Any]) -> list:
    """Clip by value, then by the joint norm of all gradients (PyTorch's utilities)."""
    import numpy as np

    if a.get("clip_value") is not None:
        v = a["clip_value"]
        grads = [np.clip(g, -v, v) for g in grads]
    if a.get("clip_norm") is not None:
        total = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
        coef = min(a["clip_norm"] / (total + CLIP_NORM_EPS), 1.0)
        grads = [g * coef for g in grads]
    return grads


def apply(
    record: Record, params: list, grads: list, states: list[dict], lr: float, a: dict
) -> tuple[list, list[dict]]:
    """One optimizer step over all parameters: clip, then step each."""
    grads = clip_gradients(grads, a)
    out = [record.reference(p, g, s, lr, a) for p, g, s in zip(params, grads, states, strict=True)]
    return [p for p, _ in out], [s for _, s in out]


def _l2(grad, param, a):
    return grad + a["weight_decay"] * param if a["weight_decay"] else grad


@optimizer(
    "sgd",
    [
        *_common(1e-3),
        Attr("momentum", "float", 0.0, "momentum factor", minimum=0),
        Attr("dampening", "float", 0.0, "dampening of the momentum", minimum=0, maximum=1),
        Attr("nesterov", "bool", False, "Nesterov momentum (needs momentum > 0, dampening 0)"),
    ],
    doc="Stochastic gradient descent, with optional (Nesterov) momentum.",
    torch="torch.optim.SGD",
    notes=[
        "The momentum buffer holds gradients, not steps: the first step sets it to the "
        "gradient, later ones to momentum * buffer + (1 - dampening) * gradient; a changing "
        "learning rate scales the whole buffer's step.",
    ],
)
def sgd(param, grad, state, lr, a):
    d = _l2(grad, param, a)
    state = dict(state)
    if a["momentum"]:
        buf = state.get("momentum_buffer")
        buf = d.copy() if buf is None else a["momentum"] * buf + (1 - a["dampening"]) * d
        state["momentum_buffer"] = buf
        d = d + a["momentum"] * buf if a["nesterov"] else buf
    return param - lr * d, state


def _adam(param, grad, state, lr, a, decoupled: bool):
    import numpy as np

    if decoupled:
        param = param * (1 - lr * a["weight_decay"])
    else:
        grad = _l2(grad, param, a)
    t = state.get("step", 0) + 1
    m = state.get("exp_avg", np.zeros_like(param))
    v = state.get("exp_avg_sq", np.zeros_like(param))
    m = m + (grad - m) * (1 - a["beta1"])  # torch: exp_avg.lerp_(grad, 1 - beta1)
    v = v * a["beta2"] + (1 - a["beta2"]) * grad * grad
    step_size = lr / (1 - a["beta1"] ** t)
    denom = np.sqrt(v) / np.sqrt(1 - a["beta2"] ** t) + a["eps"]
    return param - step_size * m / denom, {"step": t, "exp_avg": m, "exp_avg_sq": v}


_ADAM_ATTRS = [
    _beta("beta1", 0.9, "decay of the running mean of gradients"),
    _beta("beta2", 0.999, "decay of the running mean of squared gradients"),
    _eps(1e-8),
]
_ADAM_NOTE = (
    "eps is added to the bias-corrected sqrt(v_hat), as in the Adam paper's Algorithm 1 "
    "(Keras's Adam adds it before the correction)."
)


@optimizer(
    "adam",
    [*_common(1e-3), *_ADAM_ATTRS],
    doc="Adam: bias-corrected running means of the gradient and its square.",
    torch="torch.optim.Adam",
    notes=[_ADAM_NOTE],
)
def adam(param, grad, state, lr, a):
    return _adam(param, grad, state, lr, a, decoupled=False)


@optimizer(
    "adamw",
    [*_common(1e-3, 1e-2), *_ADAM_ATTRS],
    doc="AdamW: Adam with decoupled weight decay (param *= 1 - lr * weight_decay first).",
    torch="torch.optim.AdamW",
    notes=[_ADAM_NOTE, "weight_decay defaults to 0.01 (PyTorch's; Keras's AdamW: 0.004)."],
)
def adamw(param, grad, state, lr, a):
    return _adam(param, grad, state, lr, a, decoupled=True)


@optimizer(
    "rmsprop",
    [
        *_common(1e-2),
        _beta("alpha", 0.99, "decay of the running mean of squared gradients (Keras: rho)"),
        _eps(1e-8),
        Attr("momentum", "float", 0.0, "momentum factor", minimum=0),
        Attr("centered", "bool", False, "divide by the estimated variance, not the raw mean"),
    ],
    doc="RMSprop: divide the gradient by a running root mean square.",
    torch="torch.optim.RMSprop",
    notes=["eps is added to sqrt(mean square) (Keras's RMSprop adds it under the root)."],
)
def rmsprop(param, grad, state, lr, a):
    import numpy as np

    grad = _l2(grad, param, a)
    state = dict(state)
    sq = state.get("square_avg", np.zeros_like(param))
    sq = sq * a["alpha"] + (1 - a["alpha"]) * grad * grad
    state["square_avg"] = sq
    if a["centered"]:
        ga = state.get("grad_avg", np.zeros_like(param))
        ga = ga + (grad - ga) * (1 - a["alpha"])
        state["grad_avg"] = ga
        avg = np.sqrt(sq - ga * ga) + a["eps"]
    else:
        avg = np.sqrt(sq) + a["eps"]
    if a["momentum"] > 0:
        buf = state.get("momentum_buffer", np.zeros_like(param))
        buf = buf * a["momentum"] + grad / avg
        state["momentum_buffer"] = buf
        return param - lr * buf, state
    return param - lr * grad / avg, state


@optimizer(
    "adagrad",
    [
        *_common(1e-2),
        Attr("lr_decay", "float", 0.0, "lr / (1 + (step - 1) * lr_decay)", minimum=0),
        Attr(
            "initial_accumulator",
            "float",
            0.0,
            "starting value of the sum of squared gradients (Keras's default: 0.1)",
            minimum=0,
        ),
        _eps(1e-10),
    ],
    doc="Adagrad: divide by the root of the sum of all squared gradients so far.",
    torch="torch.optim.Adagrad",
    notes=[
        "initial_accumulator is PyTorch's initial_accumulator_value.",
        "eps is added to sqrt(sum) (Keras's Adagrad adds it under the root).",
    ],
)
def adagrad(param, grad, state, lr, a):
    import numpy as np

    grad = _l2(grad, param, a)
    t = state.get("step", 0) + 1
    total = state.get("sum", np.full_like(param, a["initial_accumulator"]))
    total = total + grad * grad
    clr = lr / (1 + (t - 1) * a["lr_decay"])
    return param - clr * grad / (np.sqrt(total) + a["eps"]), {"step": t, "sum": total}
