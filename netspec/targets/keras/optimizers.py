"""Keras optimizers and learning-rate schedules with PyTorch's arithmetic.

netspec's training arithmetic is PyTorch's (netspec/train, docs/training-arithmetic.md). Where a
Keras built-in computes something else (Adam's epsilon, RMSprop's and Adagrad's square roots, SGD
dampening, weight decay, a momentum buffer that holds the learning rate), the classes here
reproduce torch.optim step for step. They use only keras and numpy, so a generated training
script can copy a class (and its base) verbatim with `inspect.getsource`.

Hyper-parameters are kept as numpy float64 and cast to each variable's dtype when used: on
TensorFlow, Keras turns a Python float into float32 before a cast (0.9 -> 0.8999999761581421),
which would leak into float64 training.

`optimizer(name, attrs, learning_rate)` and `schedule(name, attrs, lr, steps_per_epoch)` pick the
class for a netspec record's resolved attributes; they are not copied into scripts.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


class TorchOptimizer(keras.optimizers.Optimizer):
    """Base: PyTorch's L2 weight decay (`grad + weight_decay * param`) and gradient clipping.

    Clipping is over all gradients together, as torch.nn.utils.clip_grad_value_ and then
    clip_grad_norm_ (`grad * min(1, clip_norm / (total_norm + 1e-6))`) before `step()`.
    """

    def __init__(self, learning_rate, weight_decay=0.0, clip_norm=None, clip_value=None, **kw):
        if not callable(learning_rate):
            learning_rate = float(learning_rate)
        super().__init__(learning_rate=learning_rate, **kw)
        self.l2 = np.float64(weight_decay)  # not Keras's `weight_decay`: that one is decoupled
        self.clip_norm = None if clip_norm is None else np.float64(clip_norm)
        self.clip_value = None if clip_value is None else np.float64(clip_value)

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)  # None: a variable the loss does not reach
        if self.clip_value is not None:
            v = self.clip_value
            grads = [
                g if g is None else ops.clip(g, self.hyper(-v, g), self.hyper(v, g)) for g in grads
            ]
        if self.clip_norm is not None:  # the norm in float64, whatever the model's dtype
            squares = [ops.sum(ops.square(ops.cast(g, "float64"))) for g in grads if g is not None]
            total = ops.sqrt(sum(squares))
            scale = ops.minimum(self.hyper(self.clip_norm, total) / (total + 1e-6), 1.0)
            grads = [g if g is None else g * ops.cast(scale, g.dtype) for g in grads]
        return super().apply(grads, trainable_variables)

    def hyper(self, value, like):
        """A float64 hyper-parameter in the dtype of `like` (no float32 on the way)."""
        return ops.cast(np.float64(value), like.dtype)

    def with_l2(self, gradient, variable):
        if not self.l2:
            return gradient
        return gradient + self.hyper(self.l2, variable) * variable

    def get_config(self):
        config = super().get_config()
        clip_norm = None if self.clip_norm is None else float(self.clip_norm)
        clip_value = None if self.clip_value is None else float(self.clip_value)
        config.update(weight_decay=float(self.l2), clip_norm=clip_norm, clip_value=clip_value)
        return config


class TorchSGD(TorchOptimizer):
    """torch.optim.SGD: buf = g on the first step, then momentum * buf + (1 - dampening) * g;
    the step is lr * (g + momentum * buf) with nesterov, else lr * buf (buf holds no lr)."""

    def __init__(self, learning_rate=1e-3, momentum=0.0, dampening=0.0, nesterov=False, **kw):
        super().__init__(learning_rate, **kw)
        self.momentum = np.float64(momentum)
        self.dampening = np.float64(dampening)
        self.nesterov = nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        if self.momentum:
            self.buffers = [
                self.add_variable_from_reference(v, "momentum_buffer") for v in variables
            ]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        d = self.with_l2(ops.cast(gradient, variable.dtype), variable)
        if self.momentum:
            buf = self.buffers[self._get_variable_index(variable)]
            m = self.hyper(self.momentum, variable)
            later = buf * m + self.hyper(1 - self.dampening, variable) * d
            self.assign(buf, ops.where(ops.equal(self.iterations, 0), d, later))
            d = d + m * buf if self.nesterov else buf
        self.assign_sub(variable, lr * d)

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum=float(self.momentum), dampening=float(self.dampening), nesterov=self.nesterov
        )
        return config


class TorchAdam(TorchOptimizer):
    """torch.optim.Adam: param -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps),
    eps added after the bias correction (Keras's Adam adds it before)."""

    decoupled = False  # AdamW: param *= 1 - lr * weight_decay instead of an L2 gradient term

    def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, **kw):
        super().__init__(learning_rate, **kw)
        self.beta1 = np.float64(beta1)
        self.beta2 = np.float64(beta2)
        self.eps = np.float64(eps)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.exp_avg = [self.add_variable_from_reference(v, "exp_avg") for v in variables]
        self.exp_avg_sq = [self.add_variable_from_reference(v, "exp_avg_sq") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.decoupled:
            self.assign(variable, variable * (1 - lr * self.hyper(self.l2, variable)))
        else:
            gradient = self.with_l2(gradient, variable)
        i = self._get_variable_index(variable)
        m, v = self.exp_avg[i], self.exp_avg_sq[i]
        b1, b2 = self.hyper(self.beta1, variable), self.hyper(self.beta2, variable)
        t = ops.cast(self.iterations + 1, variable.dtype)
        self.assign(m, m + (gradient - m) * (1 - b1))
        self.assign(v, v * b2 + (1 - b2) * gradient * gradient)
        step_size = lr / (1 - ops.power(b1, t))
        denom = ops.sqrt(v) / ops.sqrt(1 - ops.power(b2, t)) + self.hyper(self.eps, variable)
        self.assign_sub(variable, step_size * (m / denom))

    def get_config(self):
        config = super().get_config()
        config.update(beta1=float(self.beta1), beta2=float(self.beta2), eps=float(self.eps))
        return config


class TorchAdamW(TorchAdam):
    """torch.optim.AdamW: param *= 1 - lr * weight_decay, then Adam's step (PyTorch's eps)."""

    decoupled = True

    def __init__(self, learning_rate=1e-3, weight_decay=1e-2, **kw):
        super().__init__(learning_rate, weight_decay=weight_decay, **kw)


class TorchRMSprop(TorchOptimizer):
    """torch.optim.RMSprop: sq = alpha * sq + (1 - alpha) * g^2; param -= lr * g / (sqrt(sq) + eps)
    (eps outside the root; centered subtracts the squared mean gradient; momentum buffers g/avg)."""

    def __init__(
        self, learning_rate=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, centered=False, **kw
    ):
        super().__init__(learning_rate, **kw)
        self.alpha = np.float64(alpha)
        self.eps = np.float64(eps)
        self.momentum = np.float64(momentum)
        self.centered = centered

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.square_avg = [self.add_variable_from_reference(v, "square_avg") for v in variables]
        if self.centered:
            self.grad_avg = [self.add_variable_from_reference(v, "grad_avg") for v in variables]
        if self.momentum > 0:
            self.buffers = [
                self.add_variable_from_reference(v, "momentum_buffer") for v in variables
            ]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = self.with_l2(ops.cast(gradient, variable.dtype), variable)
        i = self._get_variable_index(variable)
        alpha = self.hyper(self.alpha, variable)
        sq = self.square_avg[i]
        self.assign(sq, sq * alpha + (1 - alpha) * g * g)
        if self.centered:
            ga = self.grad_avg[i]
            self.assign(ga, ga + (g - ga) * (1 - alpha))
            avg = ops.sqrt(sq - ga * ga) + self.hyper(self.eps, variable)
        else:
            avg = ops.sqrt(sq) + self.hyper(self.eps, variable)
        if self.momentum > 0:
            buf = self.buffers[i]
            self.assign(buf, buf * self.hyper(self.momentum, variable) + g / avg)
            self.assign_sub(variable, lr * buf)
        else:
            self.assign_sub(variable, lr * (g / avg))

    def get_config(self):
        config = super().get_config()
        config.update(
            alpha=float(self.alpha),
            eps=float(self.eps),
            momentum=float(self.momentum),
            centered=self.centered,
        )
        return config


class TorchAdagrad(TorchOptimizer):
    """torch.optim.Adagrad: sum += g^2; param -= lr / (1 + (t - 1) * lr_decay) * g / (sqrt(sum)
    + eps) (eps outside the root; the sum starts at initial_accumulator, Keras's at 0.1)."""

    def __init__(self, learning_rate=1e-2, lr_decay=0.0, initial_accumulator=0.0, eps=1e-10, **kw):
        super().__init__(learning_rate, **kw)
        self.lr_decay = np.float64(lr_decay)
        self.initial_accumulator = np.float64(initial_accumulator)
        self.eps = np.float64(eps)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        start = keras.initializers.Constant(self.initial_accumulator)
        self.sums = [self.add_variable_from_reference(v, "sum", start) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = self.with_l2(ops.cast(gradient, variable.dtype), variable)
        total = self.sums[self._get_variable_index(variable)]
        self.assign_add(total, g * g)
        t = ops.cast(self.iterations, variable.dtype)  # torch's step - 1
        clr = lr / (1 + t * self.hyper(self.lr_decay, variable))
        self.assign_sub(variable, clr * (g / (ops.sqrt(total) + self.hyper(self.eps, variable))))

    def get_config(self):
        config = super().get_config()
        config.update(
            lr_decay=float(self.lr_decay),
            initial_accumulator=float(self.initial_accumulator),
            eps=float(self.eps),
        )
        return config


class TorchCosineLR(keras.optimizers.schedules.LearningRateSchedule):
    """torch.optim.lr_scheduler.CosineAnnealingLR: eta_min + (lr - eta_min) * (1 + cos(pi * t /
    t_max)) / 2, t counted in units of steps_per_unit optimizer steps (an epoch, or 1), rising
    again past t_max as PyTorch's does (Keras's CosineDecay holds eta_min). Float64, tensors on
    the left (a numpy scalar on the left would take the arithmetic over)."""

    def __init__(self, learning_rate, t_max, eta_min=0.0, steps_per_unit=1):
        self.learning_rate = np.float64(learning_rate)
        self.t_max = int(t_max)
        self.eta_min = np.float64(eta_min)
        self.steps_per_unit = int(steps_per_unit)

    def __call__(self, step):
        t = ops.cast(ops.floor_divide(step, self.steps_per_unit), "float64")
        cos = ops.cos(t * np.float64(np.pi) / self.t_max)
        return (1 + cos) / 2 * (self.learning_rate - self.eta_min) + self.eta_min

    def get_config(self):
        return {
            "learning_rate": float(self.learning_rate),
            "t_max": self.t_max,
            "eta_min": float(self.eta_min),
            "steps_per_unit": self.steps_per_unit,
        }


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """torch's LinearLR(start_factor=warmup_start, total_iters=warmup) and then `after` from its
    own step 0 (SequentialLR): lr * (warmup_start + (1 - warmup_start) * t / warmup) while the
    unit t (of steps_per_unit optimizer steps) is below warmup."""

    def __init__(self, after, learning_rate, warmup, warmup_start=1 / 3, steps_per_unit=1):
        self.after = after
        self.learning_rate = np.float64(learning_rate)
        self.warmup = int(warmup)
        self.warmup_start = np.float64(warmup_start)
        self.steps_per_unit = int(steps_per_unit)

    def __call__(self, step):
        t = ops.cast(ops.floor_divide(step, self.steps_per_unit), "float64")
        s = ops.cast(self.warmup_start, "float64")
        warm = (s + (1 - s) * t / self.warmup) * self.learning_rate
        later = self.after(step - self.warmup * self.steps_per_unit)
        return ops.where(t < self.warmup, warm, ops.cast(later, "float64"))

    @classmethod
    def from_config(cls, config):
        after = keras.saving.deserialize_keras_object(config["after"])
        return cls(**{**config, "after": after})

    def get_config(self):
        return {
            "after": keras.saving.serialize_keras_object(self.after),
            "learning_rate": float(self.learning_rate),
            "warmup": self.warmup,
            "warmup_start": float(self.warmup_start),
            "steps_per_unit": self.steps_per_unit,
        }


# -- choosing a class for a netspec record (not copied into generated scripts) ------------
OPTIMIZER_CLASSES = {
    "sgd": TorchSGD,
    "adam": TorchAdam,
    "adamw": TorchAdamW,
    "rmsprop": TorchRMSprop,
    "adagrad": TorchAdagrad,
}


def optimizer(name: str, attrs: dict, learning_rate=None) -> keras.optimizers.Optimizer:
    """The Keras optimizer for a netspec optimizer record's resolved attributes.

    `learning_rate` is a schedule, or None for the constant `attrs["lr"]`. Keras's own SGD is
    used where its arithmetic is PyTorch's (constant rate, no dampening, no weight decay, no
    norm clipping: its velocity is -lr times torch's buffer).
    """
    a = dict(attrs)
    lr = a.pop("lr") if learning_rate is None else learning_rate
    a.pop("lr", None)
    builtin_sgd = (
        name == "sgd"
        and learning_rate is None
        and not a["dampening"]
        and not a["weight_decay"]
        and a["clip_norm"] is None
    )
    if builtin_sgd:
        return keras.optimizers.SGD(
            learning_rate=float(lr),
            momentum=np.float64(a["momentum"]),
            nesterov=a["nesterov"],
            clipvalue=a["clip_value"],
        )
    return OPTIMIZER_CLASSES[name](lr, **a)


def schedule(name: str, attrs: dict, learning_rate: float, steps_per_epoch: int):
    """The Keras schedule for a netspec schedule record's resolved attributes.

    Keras's ExponentialDecay with staircase steps is PyTorch's StepLR and ExponentialLR (given
    float64 rates); the cosine is netspec's own class; warm-up wraps either.
    """
    a = dict(attrs)
    unit = steps_per_epoch if a["interval"] == "epoch" else 1
    lr = np.float64(learning_rate)
    if name == "cosine":
        after = TorchCosineLR(lr, a["t_max"], a["eta_min"], steps_per_unit=unit)
    else:
        every = unit * (a["step_size"] if name == "step" else 1)
        after = keras.optimizers.schedules.ExponentialDecay(
            lr, every, np.float64(a["gamma"]), staircase=True
        )
    if not a["warmup"]:
        return after
    return LinearWarmup(after, lr, a["warmup"], a["warmup_start"], steps_per_unit=unit)
