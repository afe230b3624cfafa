"""Training parity: PyTorch (torch.optim, torch.nn losses) and Keras (netspec's optimizers and
batch norm, `model.compile` + `train_on_batch`, as a generated `fit` script trains) give the same
weights, in float64, from the same initial weights and the same batches, after 50 steps.

The twin models are built by hand in both frameworks; `to_keras` maps PyTorch's parameters to
Keras's layouts. An LSTM trains one bias in netspec (Keras has one): PyTorch's `bias_hh` is
folded into `bias_ih` and frozen before training.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from netspec.train.losses import LOSSES
from netspec.train.metrics import METRICS
from netspec.train.optimizers import OPTIMIZERS
from netspec.train.schedules import SCHEDULES, lr_at
from tests.test_train_arith import (
    SCHEDULE_CASES,
    _loss_cases,
    torch_optimizer,
    torch_scheduler,
)

torch = pytest.importorskip("torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from netspec.targets.keras import losses as klosses  # noqa: E402
from netspec.targets.keras import optimizers as kopt  # noqa: E402
from netspec.targets.keras.train_layers import TorchBatchNormalization  # noqa: E402

STEPS, BATCHES, BATCH = 50, 5, 8  # 5 batches per epoch, 10 epochs
RTOL = 1e-9

# One configuration per optimizer that exercises what changes its arithmetic: weight decay,
# momentum/dampening, a schedule with a changing rate, warm-up, clipping. `None`: constant rate.
CONFIGS = {
    "sgd": (
        "sgd",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3},
        ("step", {"step_size": 2, "gamma": 0.5}),
    ),
    "sgd_nesterov": (  # Keras's own SGD: provably the same arithmetic
        "sgd",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "clip_value": 0.5},
        None,
    ),
    "adam": (
        "adam",
        {"lr": 0.01, "weight_decay": 1e-3, "clip_norm": 1.0},
        ("cosine", {"t_max": 8, "warmup": 2}),
    ),
    "adamw": ("adamw", {"lr": 0.01, "weight_decay": 0.05}, ("exponential", {"gamma": 0.9})),
    "rmsprop": (
        "rmsprop",
        {"lr": 0.003, "momentum": 0.5, "centered": True, "weight_decay": 1e-3},
        ("step", {"step_size": 1, "gamma": 0.9, "interval": "step", "warmup": 5}),
    ),
    "adagrad": (
        "adagrad",
        {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator": 0.1, "weight_decay": 1e-3},
        None,
    ),
}


@pytest.fixture
def float64():
    """Keras in float64 for one test (the optimizer's rate variable takes floatx too)."""
    import tensorflow as tf

    tf.config.experimental.enable_tensor_float_32_execution(False)
    before = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    # the global dtype policy, once made, keeps the floatx it was made with
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(before[0])
    keras.config.set_dtype_policy(before[1])


# -- the twin models ----------------------------------------------------------------------
def mlp():
    t = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "tanh"), keras.layers.Dense(3)])
    return t, k, (4,)


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # no bias before batch norm: its gradient is rounding noise (zero in exact arithmetic),
        # which Adam-type optimizers scale up to full steps, differently on every framework
        self.conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def cnn(batch_norm=None):
    L = keras.layers
    k = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            L.Conv2D(4, 3, padding="same", use_bias=False),
            (batch_norm or TorchBatchNormalization)(momentum=0.9, epsilon=1e-5),
            L.ReLU(),
            L.GlobalAveragePooling2D(),
            L.Dense(3),
        ]
    )
    return CNN(), k, (2, 6, 6)


class LSTM(torch.nn.Module):
    def __init__(self, one_bias=True):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 4, batch_first=True)
        self.fc = torch.nn.Linear(4, 3)
        if one_bias:  # netspec trains one LSTM bias, as Keras keeps one
            with torch.no_grad():
                self.lstm.bias_ih_l0 += self.lstm.bias_hh_l0
                self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0.requires_grad_(False)

    def forward(self, x):
        return self.fc(self.lstm(x)[0][:, -1])


def lstm(one_bias=True):
    k = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(3)])
    return LSTM(one_bias), k, (5, 3)


MODELS = {"mlp": mlp, "cnn": cnn, "lstm": lstm}


def to_keras(module) -> list[np.ndarray]:
    """PyTorch's parameters and buffers in the order and layouts of the Keras twin's weights."""
    out = []
    for m in module.modules():
        if isinstance(m, torch.nn.Linear):
            out += [m.weight.T, m.bias]
        elif isinstance(m, torch.nn.Conv2d):  # [out, in, kh, kw] -> [kh, kw, in, out]
            out += [m.weight.permute(2, 3, 1, 0)]
        elif isinstance(m, torch.nn.BatchNorm2d):
            out += [m.weight, m.bias, m.running_mean, m.running_var]
        elif isinstance(m, torch.nn.LSTM):  # gates i, f, g, o are Keras's i, f, c, o
            out += [m.weight_ih_l0.T, m.weight_hh_l0.T, m.bias_ih_l0 + m.bias_hh_l0]
    return [w.detach().numpy().copy() for w in out]


def batches(shape, loss: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    dtype = keras.config.floatx()
    out = []
    for _ in range(BATCHES):
        x = rng.normal(size=(BATCH, *shape)).astype(dtype)
        y = (
            rng.normal(size=(BATCH, 3)).astype(dtype)
            if loss == "mse"
            else rng.integers(0, 3, BATCH)
        )
        out.append((x, y))
    return out


def keras_input(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x  # images: channels last


# -- training -----------------------------------------------------------------------------
def train_torch(model, data, name, a, sched):
    opt = torch_optimizer(name, [p for p in model.parameters() if p.requires_grad], a)
    s = None
    if sched:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = torch_scheduler(sched[0], opt, sched[1])
    loss_fn = torch.nn.MSELoss() if data[0][1].ndim == 2 else torch.nn.CrossEntropyLoss()
    model.train()
    for k in range(STEPS):
        x, y = data[k % BATCHES]
        opt.zero_grad()
        loss_fn(model(torch.tensor(x)), torch.tensor(y)).backward()
        params = [p for p in model.parameters() if p.requires_grad]
        if a["clip_value"] is not None:
            torch.nn.utils.clip_grad_value_(params, a["clip_value"])
        if a["clip_norm"] is not None:
            torch.nn.utils.clip_grad_norm_(params, a["clip_norm"])
        opt.step()
        per_epoch = sched and sched[1]["interval"] == "epoch"
        if s is not None and (not per_epoch or (k + 1) % BATCHES == 0):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s.step()
    return to_keras(model)


def train_keras(model, data, name, a, sched, builtin=None):
    """`builtin(attrs)`: a Keras optimizer to use instead of netspec's (to measure a difference)."""
    rate = None
    if sched:
        rate = kopt.schedule(sched[0], sched[1], a["lr"], steps_per_epoch=BATCHES)
    opt = builtin(a) if builtin else kopt.optimizer(name, a, rate)
    loss = (
        keras.losses.MeanSquaredError()
        if data[0][1].ndim == 2
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.compile(optimizer=opt, loss=loss)
    for k in range(STEPS):
        x, y = data[k % BATCHES]
        model.train_on_batch(keras_input(x), y)
    return [np.asarray(w) for w in model.get_weights()], opt


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-300)


def run_case(config, loss: str, arch: str, builtin=None, **model_kw):
    """Train both twins; the largest relative weight difference (and the Keras optimizer).

    `config` is a key of CONFIGS or a (name, attributes, schedule) triple."""
    name, given, sched = CONFIGS[config] if isinstance(config, str) else config
    a = OPTIMIZERS[name].resolve(given)
    if sched:
        sched = (sched[0], SCHEDULES[sched[0]].resolve(sched[1]))
    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    tmodel, kmodel, shape = MODELS[arch](**model_kw)
    if keras.config.floatx() == "float64":
        tmodel.double()
    start = to_keras(tmodel)
    kmodel.set_weights(start)
    data = batches(shape, loss)
    want = train_torch(tmodel, data, name, a, sched)
    got, opt = train_keras(kmodel, data, name, a, sched, builtin)
    assert int(opt.iterations.numpy()) == STEPS
    floats = {v.dtype for v in [*kmodel.weights, *opt.variables] if "float" in v.dtype}
    assert floats == {keras.config.floatx()}, floats
    moved = max(rel(w, s) for w, s in zip(want, start, strict=True))
    assert moved > 1e-3, "training did not change the weights"
    worst = max(rel(g, w) for g, w in zip(got, want, strict=True))
    return worst, opt


FAST = [  # every optimizer, loss and model at least once; the rest of the grid is `slow`
    ("sgd", "mse", "mlp"),
    ("sgd_nesterov", "categorical_crossentropy", "cnn"),
    ("adam", "categorical_crossentropy", "lstm"),
    ("adamw", "categorical_crossentropy", "mlp"),
    ("rmsprop", "mse", "lstm"),
    ("adagrad", "mse", "cnn"),
]
FULL = [
    (c, loss, arch)
    for c in CONFIGS
    for loss in ("mse", "categorical_crossentropy")
    for arch in MODELS
    if (c, loss, arch) not in FAST
]


@pytest.mark.parametrize(("config", "loss", "arch"), FAST)
def test_parity(float64, config, loss, arch):
    worst, _ = run_case(config, loss, arch)
    assert worst < RTOL, f"max relative weight difference {worst:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize(("config", "loss", "arch"), FULL)
def test_parity_full_grid(float64, config, loss, arch):
    worst, _ = run_case(config, loss, arch)
    assert worst < RTOL, f"max relative weight difference {worst:.2e}"


@pytest.mark.parametrize("config", ["adam"])
def test_parity_float32(config):
    """The same classes train float32 models (hyper-parameters cast to the variables' dtype)."""
    assert keras.config.floatx() == keras.config.dtype_policy().name == "float32"
    worst, _ = run_case(config, "categorical_crossentropy", "cnn")
    assert worst < 1e-4, f"max relative weight difference {worst:.2e}"


def test_optimizers_and_schedules_round_trip_their_config(float64):
    a = OPTIMIZERS["adagrad"].resolve({"lr_decay": 0.1, "clip_norm": 2.0, "weight_decay": 0.1})
    opt = kopt.optimizer("adagrad", a)
    again = type(opt).from_config(opt.get_config())
    assert again.get_config() == opt.get_config()
    sched = SCHEDULES["step"].resolve({"step_size": 2, "warmup": 3})
    rate = kopt.schedule("step", sched, 0.1, steps_per_epoch=4)
    again = type(rate).from_config(rate.get_config())
    steps = [keras.ops.convert_to_tensor(k, "int64") for k in range(30)]
    assert [float(again(k)) for k in steps] == [float(rate(k)) for k in steps]


def test_builtin_sgd_is_used_only_where_identical(float64):
    plain = OPTIMIZERS["sgd"].resolve({"momentum": 0.9, "nesterov": True})
    assert type(kopt.optimizer("sgd", plain)) is keras.optimizers.SGD
    damped = OPTIMIZERS["sgd"].resolve({"momentum": 0.9, "dampening": 0.1})
    assert type(kopt.optimizer("sgd", damped)) is kopt.TorchSGD
    rate = kopt.schedule("step", SCHEDULES["step"].resolve({"step_size": 1}), 0.1, 5)
    assert type(kopt.optimizer("sgd", plain, rate)) is kopt.TorchSGD


@pytest.mark.parametrize(("name", "given"), SCHEDULE_CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("interval", ["epoch", "step"])
def test_keras_schedule_matches_the_reference(float64, name, given, interval):
    rec = SCHEDULES[name]
    a = rec.resolve({**given, "interval": interval})
    rate = kopt.schedule(name, a, 0.1, steps_per_epoch=3)
    for step in range(40):
        t = step // 3 if interval == "epoch" else step
        got = float(rate(keras.ops.convert_to_tensor(step, "int64")))
        assert got == pytest.approx(lr_at(rec, t, 0.1, a), rel=1e-14, abs=1e-17), step


def _keras_loss(name, given, y, t, logits):
    import tensorflow as tf

    a = LOSSES[name].resolve(given)
    reads = "logits" if logits else "probabilities"
    fn = klosses.loss(name, a, reads, sparse=t.ndim < y.ndim)
    var = tf.Variable(y)
    with tf.GradientTape() as tape:
        value = fn(t, var)
    return float(value), tape.gradient(value, var).numpy()


@pytest.mark.parametrize(("name", "given", "y", "t", "logits"), _loss_cases())
def test_keras_loss_matches_the_reference(float64, name, given, y, t, logits):
    want, want_grad = LOSSES[name].reference(y, t, LOSSES[name].resolve(given), logits)
    got, grad = _keras_loss(name, given, y, t, logits)
    assert got == pytest.approx(want, rel=1e-14)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-17)


def test_keras_builtin_cross_entropy_on_probabilities_differs(float64):
    """Why netspec has its own: Keras clips probabilities (BCE) and renormalizes rows (CCE)."""
    p = np.array([[1e-9, 0.5, 1 - 1e-9]])
    t = np.array([[1.0, 1.0, 0.0]])
    want, _ = LOSSES["binary_crossentropy"].reference(p, t, {}, from_logits=False)
    got, _ = _keras_loss("binary_crossentropy", {}, p, t, False)
    assert got == pytest.approx(want, rel=1e-14)
    assert float(keras.losses.BinaryCrossentropy()(t, p)) < 0.9 * want
    rows = np.array([[0.2, 0.3, 0.9]])  # e.g. sigmoids under categorical cross-entropy
    _, want_grad = LOSSES["categorical_crossentropy"].reference(rows, np.array([1]), {}, False)
    _, grad = _keras_loss("categorical_crossentropy", {}, rows, np.array([1]), False)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-14)


def test_keras_metrics_match_the_reference(float64):
    rng = np.random.default_rng(3)
    y = rng.normal(size=(10, 4))
    labels = rng.integers(0, 4, size=10)
    col = rng.uniform(size=(10, 1))
    bits = (rng.uniform(size=(10, 1)) > 0.5) * 1.0
    M = keras.metrics
    cases = [
        ("accuracy", {}, y, labels, M.SparseCategoricalAccuracy()),
        ("accuracy", {}, y, np.eye(4)[labels], M.CategoricalAccuracy()),
        ("accuracy", {"threshold": 0.3}, col, bits, M.BinaryAccuracy(threshold=0.3)),
        ("mae", {}, y, y[::-1], M.MeanAbsoluteError()),
        ("mse", {}, y, y[::-1], M.MeanSquaredError()),
    ]
    for name, given, out, target, metric in cases:
        metric.update_state(target, out)
        want = METRICS[name].reference(out, target, METRICS[name].resolve(given))
        assert float(metric.result()) == pytest.approx(want, rel=1e-14), name


def test_keras_batch_norm_inference_is_the_builtin(float64):
    x = np.random.default_rng(0).normal(size=(4, 5, 5, 3)) * 2 + 1
    ours = TorchBatchNormalization(momentum=0.9, epsilon=1e-5)
    theirs = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    ours.build(x.shape)
    theirs.build(x.shape)
    stats = [np.full(3, v) for v in (1.5, -0.5, 0.3, 2.0)]
    ours.set_weights(stats)
    theirs.set_weights(stats)
    assert np.array_equal(ours(x, training=False), theirs(x, training=False))
    assert np.array_equal(ours(x, training=True), theirs(x, training=True))
    var = x.reshape(-1, 3).var(axis=0, ddof=1)  # the running variance takes the unbiased one
    np.testing.assert_allclose(ours.moving_variance, 0.9 * 2.0 + 0.1 * var, rtol=1e-12)
    assert not np.allclose(theirs.moving_variance, ours.moving_variance, rtol=1e-6)


def test_copied_classes_are_a_clean_module_that_trains_as_pytorch(float64, tmp_path):
    """What a generated script will do: the classes' source, copied alone under three imports."""
    import importlib.util
    import inspect

    from tests.conftest import ruff_clean

    copied = [
        *[
            c
            for c in kopt.__dict__.values()
            if isinstance(c, type) and c.__module__ == kopt.__name__
        ],
        TorchBatchNormalization,
        klosses.TorchBinaryCrossentropy,
        klosses.TorchCategoricalCrossentropy,
    ]
    text = "import keras\nimport numpy as np\nfrom keras import ops\n\n\n"
    text += "\n\n".join(inspect.getsource(c) for c in copied)
    ruff_clean(text, "copied training classes")
    path = tmp_path / "copied.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("copied_training_classes", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def adamw(a):
        cosine = mod.TorchCosineLR(0.01, 8, steps_per_unit=BATCHES)
        return mod.TorchAdamW(mod.LinearWarmup(cosine, 0.01, 2, steps_per_unit=BATCHES), 0.05)

    config = ("adamw", {"lr": 0.01, "weight_decay": 0.05}, ("cosine", {"t_max": 8, "warmup": 2}))
    worst, opt = run_case(config, "categorical_crossentropy", "mlp", adamw)
    assert type(opt).__module__ == "copied_training_classes"
    assert worst < RTOL, f"max relative weight difference {worst:.2e}"


def test_optimizer_classes_import_no_netspec():
    """A generated script copies them verbatim: their source may name only keras and numpy."""
    import inspect

    for cls in [*kopt.OPTIMIZER_CLASSES.values(), kopt.TorchCosineLR, kopt.LinearWarmup]:
        for c in cls.__mro__:
            if c.__module__ == kopt.__name__:
                assert "netspec" not in inspect.getsource(c), c
    assert "netspec" not in inspect.getsource(TorchBatchNormalization)


# -- the differences netspec removes (measured; docs/training-arithmetic.md) -------------
def _f64(x):
    return np.float64(x)


K = keras.optimizers
# label: (netspec configuration, loss, architecture, Keras built-in or None, model keywords)
DIFFERENCES = {
    "Adam: eps before the bias correction": (
        ("adam", {"lr": 0.01}, None),
        "mse",
        "mlp",
        lambda a: K.Adam(0.01, beta_1=_f64(0.9), beta_2=_f64(0.999), epsilon=1e-8),
        {},
    ),
    "AdamW: eps before the bias correction": (
        ("adamw", {"lr": 0.01, "weight_decay": 0.05}, None),
        "mse",
        "mlp",
        lambda a: K.AdamW(0.01, _f64(0.05), beta_1=_f64(0.9), beta_2=_f64(0.999), epsilon=1e-8),
        {},
    ),
    "RMSprop: eps under the root": (
        ("rmsprop", {}, None),
        "mse",
        "mlp",
        lambda a: K.RMSprop(0.01, rho=0.99, epsilon=1e-8),
        {},
    ),
    "Adagrad: eps under the root": (
        ("adagrad", {}, None),
        "mse",
        "mlp",
        lambda a: K.Adagrad(0.01, initial_accumulator_value=0.0, epsilon=1e-10),
        {},
    ),
    "SGD: no dampening": (
        ("sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1}, None),
        "mse",
        "mlp",
        lambda a: K.SGD(0.05, momentum=_f64(0.9)),
        {},
    ),
    "SGD: decoupled weight decay": (
        ("sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, None),
        "mse",
        "mlp",
        lambda a: K.SGD(0.05, momentum=_f64(0.9), weight_decay=_f64(0.01)),
        {},
    ),
    "SGD momentum: lr inside the velocity, changing lr": (
        ("sgd", {"lr": 0.05, "momentum": 0.9}, ("step", {"step_size": 1, "gamma": 0.5})),
        "mse",
        "mlp",
        lambda a: K.SGD(
            K.schedules.ExponentialDecay(_f64(0.05), BATCHES, _f64(0.5), staircase=True),
            momentum=_f64(0.9),
        ),
        {},
    ),
    "SGD momentum: Python-float momentum (float32 leak)": (
        ("sgd", {"lr": 0.05, "momentum": 0.9}, None),
        "mse",
        "mlp",
        lambda a: K.SGD(0.05, momentum=0.9),
        {},
    ),
    "clip_norm: global_clipnorm has no + 1e-6": (
        ("adam", {"lr": 0.01, "clip_norm": 0.05}, None),
        "mse",
        "mlp",
        lambda a: kopt.TorchAdam(0.01, global_clipnorm=0.05),
        {},
    ),
    "ExponentialDecay: Python-float rates (float32 leak)": (
        ("adam", {"lr": 0.01}, ("exponential", {"gamma": 0.9})),
        "mse",
        "mlp",
        lambda a: kopt.TorchAdam(K.schedules.ExponentialDecay(0.01, BATCHES, 0.9, staircase=True)),
        {},
    ),
    "CosineDecay: holds eta_min past t_max": (
        ("adam", {"lr": 0.01}, ("cosine", {"t_max": 20, "interval": "step"})),
        "mse",
        "mlp",
        lambda a: kopt.TorchAdam(K.schedules.CosineDecay(_f64(0.01), 20)),
        {},
    ),
    "batch norm: running variance biased": (
        ("sgd", {"lr": 0.05, "momentum": 0.9}, None),
        "mse",
        "cnn",
        None,
        {"batch_norm": keras.layers.BatchNormalization},
    ),
    "LSTM: two trainable biases in PyTorch": (
        ("sgd", {"lr": 0.05, "momentum": 0.9}, None),
        "mse",
        "lstm",
        None,
        {"one_bias": False},
    ),
}


def measure(label: str) -> tuple[float, float]:
    """The largest relative weight difference with the Keras built-in, and with netspec's."""
    config, loss, arch, builtin, model_kw = DIFFERENCES[label]
    before, _ = run_case(config, loss, arch, builtin, **model_kw)
    after, _ = run_case(config, loss, arch)
    return before, after


@pytest.mark.slow
@pytest.mark.parametrize("label", DIFFERENCES)
def test_keras_builtin_still_differs(float64, label):
    """A canary per difference: when Keras's built-in agrees with PyTorch, use it instead."""
    before, after = measure(label)
    assert after < RTOL
    assert before > 1e-8, f"the Keras built-in now matches ({before:.1e}): use it"


if __name__ == "__main__":  # the table of docs/training-arithmetic.md
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    print("| difference | built-in | netspec |\n| --- | --- | --- |")
    for label in DIFFERENCES:
        b, a = measure(label)
        print(f"| {label} | {b:.1e} | {a:.1e} |")
