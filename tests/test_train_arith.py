"""The training records' float64 numpy references against PyTorch itself."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from netspec.ops.base import Invalid
from netspec.train import optimizers as opt
from netspec.train import tables
from netspec.train.losses import LOSSES, loss_input
from netspec.train.metrics import METRICS
from netspec.train.optimizers import OPTIMIZERS
from netspec.train.schedules import SCHEDULES, lr_at

torch = pytest.importorskip("torch")

# Every optimizer with its defaults and with the options that change its arithmetic.
OPTIMIZER_CASES = [
    ("sgd", {}),
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("adam", {}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.95, "eps": 1e-3, "weight_decay": 0.1}),
    ("adamw", {}),
    ("adamw", {"lr": 0.02, "weight_decay": 0.3, "eps": 1e-4}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.1, "initial_accumulator": 0.2, "weight_decay": 0.05}),
    ("adam", {"lr": 0.01, "clip_norm": 0.5}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "clip_value": 0.3, "clip_norm": 1.0}),
]

TORCH_NAMES = {
    "sgd": ("SGD", {}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "rmsprop": ("RMSprop", {}),
    "adagrad": ("Adagrad", {}),
}


def torch_optimizer(name: str, params, a: dict):
    """The torch.optim object a record names, with the record's resolved attributes."""
    kw = {"lr": a["lr"], "weight_decay": a["weight_decay"]}
    if name == "sgd":
        kw.update(momentum=a["momentum"], dampening=a["dampening"], nesterov=a["nesterov"])
        return torch.optim.SGD(params, **kw)
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, betas=(a["beta1"], a["beta2"]), eps=a["eps"], **kw)
    if name == "rmsprop":
        return torch.optim.RMSprop(
            params,
            alpha=a["alpha"],
            eps=a["eps"],
            momentum=a["momentum"],
            centered=a["centered"],
            **kw,
        )
    return torch.optim.Adagrad(
        params,
        lr_decay=a["lr_decay"],
        initial_accumulator_value=a["initial_accumulator"],
        eps=a["eps"],
        **kw,
    )


@pytest.mark.parametrize(("name", "given"), OPTIMIZER_CASES, ids=lambda v: str(v))
def test_optimizer_reference_matches_torch(name, given):
    rec = OPTIMIZERS[name]
    a = rec.resolve(given)
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(3, 4)), rng.normal(size=(4,))]
    tp = [torch.tensor(p, requires_grad=True) for p in params]
    topt = torch_optimizer(name, tp, a)
    states: list[dict] = [{} for _ in params]
    for k in range(30):
        grads = [rng.normal(size=p.shape) * (1 + k % 3) for p in params]
        for t, g in zip(tp, grads, strict=True):
            t.grad = torch.tensor(g)
        if a["clip_value"] is not None:
            torch.nn.utils.clip_grad_value_(tp, a["clip_value"])
        if a["clip_norm"] is not None:
            torch.nn.utils.clip_grad_norm_(tp, a["clip_norm"])
        topt.step()
        params, states = opt.apply(rec, params, grads, states, a["lr"], a)
    for p, t in zip(params, tp, strict=True):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-12, atol=1e-15)


def test_sgd_momentum_buffer_keeps_gradients_when_the_lr_changes():
    """torch's buffer excludes the lr: a new lr scales the whole step (Keras's would not)."""
    rec = OPTIMIZERS["sgd"]
    a = rec.resolve({"lr": 0.1, "momentum": 0.9})
    p = np.ones(2)
    tp = torch.tensor(p, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
    state: dict = {}
    for k, lr in enumerate([0.1, 0.1, 0.01, 0.5]):
        g = np.array([1.0, -2.0]) * (k + 1)
        tp.grad = torch.tensor(g)
        topt.param_groups[0]["lr"] = lr
        topt.step()
        p, state = rec.reference(p, g, state, lr, a)
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-14)


def test_optimizer_defaults_are_pytorchs():
    for name, (cls, _) in TORCH_NAMES.items():
        defaults = getattr(torch.optim, cls)([torch.zeros(1, requires_grad=True)]).defaults
        a = OPTIMIZERS[name].resolve()
        assert a["lr"] == defaults["lr"], name
        assert a["weight_decay"] == defaults["weight_decay"], name
        for ours, theirs in [("eps", "eps"), ("momentum", "momentum"), ("alpha", "alpha")]:
            if ours in a:
                assert a[ours] == defaults[theirs], (name, ours)
        if "beta1" in a:
            assert (a["beta1"], a["beta2"]) == defaults["betas"], name
        if name == "adagrad":
            assert a["initial_accumulator"] == defaults["initial_accumulator_value"]
            assert a["lr_decay"] == defaults["lr_decay"]


# -- losses -------------------------------------------------------------------------------
def _torch_loss(name: str, y, t, a, from_logits: bool):
    F = torch.nn.functional
    if name == "mse":
        return F.mse_loss(y, t)
    if name == "mae":
        return F.l1_loss(y, t)
    if name == "huber":
        return F.huber_loss(y, t, delta=a["delta"])
    if name == "binary_crossentropy":
        fn = F.binary_cross_entropy_with_logits if from_logits else F.binary_cross_entropy
        return fn(y, t)
    if from_logits:  # class indices or probability rows
        return F.cross_entropy(y.reshape(-1, y.shape[-1]), t.reshape(-1, *t.shape[y.ndim - 1 :]))
    logp = torch.log(y).reshape(-1, y.shape[-1])
    if t.dtype == torch.int64:
        return F.nll_loss(logp, t.reshape(-1))
    return -(t.reshape(logp.shape) * logp).sum(-1).mean()


def _loss_cases():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(6, 4)) * 3
    reg = rng.normal(size=(6, 4)) * 3
    labels = rng.integers(0, 4, size=(6,))
    seq_labels = rng.integers(0, 4, size=(2, 3))
    probs = rng.dirichlet(np.ones(4), size=6)
    p01 = 1 / (1 + np.exp(-y))
    return [
        ("mse", {}, y, reg, False),
        ("mae", {}, y, reg, False),
        ("huber", {}, y, reg, False),
        ("huber", {"delta": 0.3}, y, reg, False),
        ("binary_crossentropy", {}, y * 10, rng.uniform(size=y.shape), True),
        ("binary_crossentropy", {}, p01, (rng.uniform(size=y.shape) > 0.5) * 1.0, False),
        ("categorical_crossentropy", {}, y, labels, True),
        ("categorical_crossentropy", {}, y, np.eye(4)[labels], True),
        ("categorical_crossentropy", {}, y, probs, True),
        ("categorical_crossentropy", {}, y.reshape(2, 3, 4), seq_labels, True),
        ("categorical_crossentropy", {}, probs, labels, False),
        ("categorical_crossentropy", {}, probs, np.eye(4)[labels], False),
    ]


@pytest.mark.parametrize(("name", "given", "y", "t", "logits"), _loss_cases())
def test_loss_reference_matches_torch(name, given, y, t, logits):
    a = LOSSES[name].resolve(given)
    value, grad = LOSSES[name].reference(y, t, a, from_logits=logits)
    ty = torch.tensor(y, requires_grad=True)
    tv = _torch_loss(name, ty, torch.tensor(t), a, logits)
    tv.backward()
    assert value == pytest.approx(tv.item(), rel=1e-13)
    np.testing.assert_allclose(grad, ty.grad.numpy(), rtol=1e-12, atol=1e-17)


def test_cross_entropy_from_logits_is_stable_where_probabilities_saturate():
    z = np.array([[800.0, -800.0, 0.0]])
    a = LOSSES["categorical_crossentropy"].resolve()
    value, grad = LOSSES["categorical_crossentropy"].reference(z, np.array([1]), a)
    assert value == pytest.approx(1600.0)
    assert np.isfinite(grad).all()
    b, _ = LOSSES["binary_crossentropy"].reference(np.array([[-800.0]]), np.array([[1.0]]), a)
    assert b == pytest.approx(800.0)


def test_loss_input_rule():
    assert loss_input("categorical_crossentropy", "softmax") == "input_logits"
    assert loss_input("binary_crossentropy", "sigmoid") == "input_logits"
    assert loss_input("categorical_crossentropy", "dense") == "logits"
    assert loss_input("binary_crossentropy", "softmax") == "probabilities"
    assert loss_input("mse", "softmax") == "output"


# -- schedules ----------------------------------------------------------------------------
SCHEDULE_CASES = [
    ("step", {"step_size": 3, "gamma": 0.5}),
    ("step", {"step_size": 2, "warmup": 3}),
    ("exponential", {"gamma": 0.9}),
    ("exponential", {"gamma": 0.7, "warmup": 4, "warmup_start": 0.1}),
    ("cosine", {"t_max": 10, "eta_min": 0.001}),
    ("cosine", {"t_max": 6, "warmup": 2, "warmup_start": 0.25}),
    ("cosine", {"t_max": 4}),  # past t_max: rises again, as torch's
]


def torch_scheduler(name: str, topt, a: dict):
    S = torch.optim.lr_scheduler
    if name == "step":
        main = S.StepLR(topt, a["step_size"], a["gamma"])
    elif name == "exponential":
        main = S.ExponentialLR(topt, a["gamma"])
    else:
        main = S.CosineAnnealingLR(topt, a["t_max"], a["eta_min"])
    if not a["warmup"]:
        return main
    warm = S.LinearLR(topt, a["warmup_start"], 1.0, total_iters=a["warmup"])
    return S.SequentialLR(topt, [warm, main], milestones=[a["warmup"]])


@pytest.mark.parametrize(("name", "given"), SCHEDULE_CASES, ids=lambda v: str(v))
def test_schedule_reference_matches_torch(name, given):
    import warnings

    rec = SCHEDULES[name]
    a = rec.resolve(given)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about step order; no optimizer steps here
        sched = torch_scheduler(name, topt, a)
        for t in range(20):
            lr = topt.param_groups[0]["lr"]
            assert lr_at(rec, t, 0.1, a) == pytest.approx(lr, rel=1e-12, abs=1e-15), t
            sched.step()


def test_cosine_t_max_defaults_to_the_run_after_warm_up():
    from netspec.train.schedules import for_run

    a = SCHEDULES["cosine"].resolve({"warmup": 2})
    assert a["t_max"] is None
    assert for_run(a, 10)["t_max"] == 8
    assert for_run({**a, "t_max": 3}, 10)["t_max"] == 3
    step = SCHEDULES["step"].resolve({"step_size": 1})
    assert for_run(step, 10) == step


# -- metrics ------------------------------------------------------------------------------
def test_metric_references():
    y = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]])
    labels = np.array([1, 0, 1, 0])
    acc = METRICS["accuracy"]
    a = acc.resolve()
    assert acc.reference(y, labels, a) == 0.75  # a tie goes to the first class, as argmax
    assert acc.reference(y, np.eye(3)[labels], a) == 0.75
    ty = torch.tensor(y)
    assert acc.reference(y, labels, a) == (ty.argmax(-1) == torch.tensor(labels)).double().mean()
    col = np.array([[0.2], [0.6], [0.5], [0.9]])
    assert acc.reference(col, np.array([0, 1, 1, 0]), a) == 0.5
    assert acc.reference(col - 0.5, np.array([0, 1, 1, 0]), acc.resolve({"threshold": 0})) == 0.5
    t = y[::-1].copy()
    assert METRICS["mae"].reference(y, t, {}) == pytest.approx((ty - torch.tensor(t)).abs().mean())
    assert METRICS["mse"].reference(y, t, {}) == pytest.approx(((ty - torch.tensor(t)) ** 2).mean())


# -- the records themselves ---------------------------------------------------------------
def test_records_are_complete():
    for kind, records in tables().items():
        for rec in records.values():
            assert rec.kind == kind and rec.doc and rec.torch, rec.name
            for attr in rec.attrs.values():
                assert attr.doc, (rec.name, attr.name)
                attr.json_schema()  # every kind has a schema fragment


def test_resolve_checks_names_and_values():
    with pytest.raises(Invalid, match="no attribute 'beta_1'") as e:
        OPTIMIZERS["adam"].resolve({"beta_1": 0.9})
    assert e.value.hint == "did you mean 'beta1'?"
    with pytest.raises(Invalid, match="expected a number"):
        OPTIMIZERS["sgd"].resolve({"lr": "fast"})
    with pytest.raises(Invalid, match="needs 'step_size'"):
        SCHEDULES["step"].resolve({})
    with pytest.raises(Invalid, match="one of epoch, step") as e:
        SCHEDULES["step"].resolve({"step_size": 1, "interval": "epochs"})
    assert e.value.hint == "did you mean 'epoch'?"
    schema = SCHEDULES["cosine"].attrs["interval"].json_schema()
    assert schema["anyOf"][0]["enum"] == ["epoch", "step"]


def test_record_schemas_agree_with_resolve():
    jsonschema = pytest.importorskip("jsonschema")
    cases = [
        ("optimizer", "adam", {"lr": 0.01, "beta2": 0.99}, True),
        ("optimizer", "adam", {"lr": "$rate"}, True),  # a param, substituted later
        ("optimizer", "adam", {"beta_1": 0.9}, False),
        ("optimizer", "sgd", {"nesterov": "yes"}, False),
        ("schedule", "step", {"gamma": 0.5}, False),  # step_size is required
        ("schedule", "cosine", {"interval": "step", "warmup": 3}, True),
        ("schedule", "cosine", {"interval": "batch"}, False),
        ("loss", "huber", {"delta": -1.0}, False),
    ]
    for kind, name, given, ok in cases:
        rec = tables()[kind][name]
        valid = jsonschema.Draft202012Validator(rec.json_schema()).is_valid(given)
        assert valid == ok, (name, given)
        if not any(isinstance(v, str) and v.startswith("$") for v in given.values()):
            try:
                rec.resolve(given)
                resolved = True
            except Invalid:
                resolved = False
            assert resolved == ok, (name, given)


def test_importing_the_records_loads_no_numpy_or_framework():
    code = (
        "import sys; from netspec.train import tables; tables(); "
        "print(sorted(m for m in ('numpy', 'torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_docs_table_is_the_records():
    from pathlib import Path

    from netspec.train.record import markdown

    doc = (Path(__file__).parents[1] / "docs" / "training-arithmetic.md").read_text()
    table = markdown([r for records in tables().values() for r in records.values()])
    assert table in doc, "regenerate the table with netspec.train.record.markdown"
