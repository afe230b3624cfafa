"""Generated modules vs hand-written references: forward time, same weights, same inputs.

PyTorch: `netspec.compile(graph, "torch", weights)` against the hand-written twins
(`tests/reference/torch_models.py`; ResNet-50 from `benchmarks/models.py`), canonical weights
(`tools.testing.random_weights`) loaded into both, outputs checked equal (netspec's parity
bound) before timing; `torch.inference_mode()`, set_num_threads(2).
Keras: netspec's Keras models of `specs/keras_resnet50.yaml` / `specs/keras_mobilenetv2.yaml`
against `keras.applications.ResNet50` / `MobileNetV2(weights=None)`, the reference's random
weights copied into canonical form with the mapping of `tests/test_keras_applications.py`;
timed as an eager call `model(x, training=False)` and inside a `tf.function` (graph mode,
the same wrapper on both). The Keras half runs in its own process (TensorFlow and torch do not
share one). Contenders interleaved, warm-up excluded, medians.
Goal: netspec / reference <= 1.02.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH,
    PY,
    ROOT,
    THREADS,
    Context,
    Table,
    calls_for,
    fmt_ratio,
    fmt_s,
    goal,
    paired_ratio,
    pin_threads,
    rounds_for,
    run_process,
    time_calls,
)

if str(ROOT) not in sys.path:  # tests.reference.torch_models, tests.test_keras_applications
    sys.path.insert(0, str(ROOT))

GOAL = 1.02
# name -> (batch, dynamic axis size); the reference class comes from REFERENCES or models
TORCH_CASES = {
    "lenet5": (32, 0),
    "resnet18": (8, 0),
    "resnet50": (8, 0),
    "char_lstm": (32, 64),
    "bigru_classifier": (32, 50),
    "dcgan_generator": (32, 0),
}
QUICK_TORCH = ["resnet18", "char_lstm"]
KERAS_CASES = {
    "resnet50": ("keras_resnet50.yaml", "ResNet50", 4),
    "mobilenetv2": ("keras_mobilenetv2.yaml", "MobileNetV2", 8),
}
QUICK_KERAS = ["mobilenetv2"]


def torch_part(ctx: Context, table: Table) -> None:
    import torch

    import netspec
    from tests.reference.torch_models import REFERENCES, load_canonical
    from tools.testing import max_violation, random_inputs, random_weights

    import models

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    cases = QUICK_TORCH if ctx.quick else list(TORCH_CASES)
    for name in cases:
        batch, dyn = TORCH_CASES[name]
        ctx.log(f"  reference torch {name}")
        try:
            if name in REFERENCES:
                graph = netspec.load(ROOT / REFERENCES[name].spec)
                ref = REFERENCES[name].build()
            else:
                net = models.NETS[name]
                graph = netspec.load(net.spec)
                ref = net.build()
            w = random_weights(graph, seed=0)
            load_canonical(ref, w)
            gen = netspec.compile(graph, target="torch", weights=w).eval()
            xs = random_inputs(graph, batch=batch, seed=0, dynamic=dyn or 5)
            args = [torch.from_numpy(v) for v in xs.values()]
            with torch.inference_mode():
                a, b = gen(*args), ref(*args)
            v = max_violation(a.numpy(), b.numpy())
            parity = "ok" if v <= 0 else f"OFF by {v:.2g}"
        except Exception as e:  # noqa: BLE001 - one broken case must not end the section
            error = f"failed: {type(e).__name__}: {str(e)[:120]}"
            table.add("torch", name, batch, *["-"] * 4, error)
            continue

        def call(m, args=args):
            with torch.inference_mode():
                return m(*args)

        fns = {"netspec": lambda gen=gen: call(gen), "reference": lambda ref=ref: call(ref)}
        fns["netspec"]()
        t0 = time.perf_counter()
        fns["netspec"]()
        t_call = time.perf_counter() - t0
        number = calls_for(t_call)
        rounds = rounds_for(t_call, number, ctx.repeat, 1.0 if ctx.quick else 6.0)
        s = time_calls(fns, rounds, number=number, warmup=2)
        r = paired_ratio(s["netspec"], s["reference"])
        rmin = s["netspec"].min / s["reference"].min
        ok = r <= GOAL
        table.add(
            "torch",
            name,
            batch,
            f"{fmt_s(s['netspec'].median)}",
            f"{fmt_s(s['reference'].median)}",
            f"{fmt_ratio(r, 3)} (min {rmin:.3f})",
            parity,
            f"{goal(ok)} ({rounds} rounds x {number})",
        )
        ctx.findings.append(
            f"reference: torch {name}: netspec / hand-written = "
            f"{fmt_ratio(r, 3)} (goal <= {GOAL}): {goal(ok)}"
        )


def keras_worker(quick: bool, repeat: int) -> int:
    """The Keras half, in its own process; prints one JSON line of rows and findings."""
    pin_threads()
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_tensor_float_32_execution(False)
    import keras

    import netspec
    from tests import test_keras_applications as kapp
    from tools.testing import max_violation

    node_of = {"resnet50": kapp.resnet50_node, "mobilenetv2": kapp.mobilenetv2_node}
    rows, findings = [], []
    cases = QUICK_KERAS if quick else list(KERAS_CASES)
    for name in cases:
        spec, app, batch = KERAS_CASES[name]
        print(f"  reference keras {name}", file=sys.stderr, flush=True)
        try:
            ref = getattr(keras.applications, app)(weights=None)
            kapp.randomize(ref, seed=7)
            weights = {}
            for layer in ref.layers:
                if layer.get_weights():
                    weights.update(kapp.canonical(layer, node_of[name](layer.name)))
            graph = netspec.load(ROOT / "specs" / spec)
            gen = netspec.compile(graph, "keras", weights)
            x = np.random.default_rng(8).normal(0, 1, (batch, 224, 224, 3)).astype(np.float32)
            v = max_violation(
                np.asarray(gen(x, training=False)), np.asarray(ref(x, training=False))
            )
            parity = "ok" if v <= 0 else f"OFF by {v:.2g}"
        except Exception as e:  # noqa: BLE001
            rows.append(
                [
                    "keras",
                    name,
                    str(batch),
                    "-",
                    "-",
                    "-",
                    "-",
                    f"failed: {type(e).__name__}: {str(e)[:120]}",
                ]
            )
            continue
        xt = tf.constant(x)

        def eager(m, xt=xt):
            return lambda: m(xt, training=False)

        def graph(m, xt=xt):
            f = tf.function(lambda t: m(t, training=False))
            return lambda: f(xt).numpy()

        modes = {
            "eager call": {"netspec": eager(gen), "reference": eager(ref)},
            "tf.function": {"netspec": graph(gen), "reference": graph(ref)},
        }
        for mode, fns in modes.items():
            fns["netspec"]()
            t0 = time.perf_counter()
            fns["netspec"]()
            t_call = time.perf_counter() - t0
            number = calls_for(t_call)
            rounds = rounds_for(t_call, number, repeat, 1.0 if quick else 2.0)
            s = time_calls(fns, rounds, number=number, warmup=2)
            r = paired_ratio(s["netspec"], s["reference"])
            rmin = s["netspec"].min / s["reference"].min
            ok = r <= GOAL
            rows.append(
                [
                    "keras",
                    f"{name} ({mode})",
                    str(batch),
                    fmt_s(s["netspec"].median),
                    fmt_s(s["reference"].median),
                    f"{fmt_ratio(r, 3)} (min {rmin:.3f})",
                    parity,
                    f"{goal(ok)} ({rounds} rounds x {number})",
                ]
            )
            findings.append(
                f"reference: keras {name} ({mode}): netspec / keras.applications = "
                f"{fmt_ratio(r, 3)} (goal <= {GOAL}): {goal(ok)}"
            )
    print(json.dumps({"rows": rows, "findings": findings}))
    return 0


def run(ctx: Context) -> list[Table]:
    table = Table(
        "Generated vs hand-written: forward time, median per call (same weights, same inputs)",
        [
            "framework",
            "network",
            "batch",
            "netspec",
            "hand-written",
            "netspec / ref",
            "parity",
            "goal",
        ],
    )
    torch_part(ctx, table)
    ctx.log("  reference keras (own process)")
    argv = [PY, str(BENCH / "reference.py"), "--keras-worker", str(ctx.repeat)]
    if ctx.quick:
        argv.append("--quick")
    p = run_process(argv, timeout=900)
    sys.stderr.write(
        "".join(line + "\n" for line in p.stderr.splitlines() if line.startswith("  reference"))
    )
    if p.rc == 0:
        data = json.loads(p.stdout.strip().splitlines()[-1])
        for row in data["rows"]:
            table.add(*row)
        ctx.findings += data["findings"]
    else:
        tail = p.stderr.strip().splitlines()[-1:] or ["?"]
        table.add("keras", "-", "-", "-", "-", "-", "-", f"failed: {tail[0][:150]}")
    table.notes.append(
        "ratio = paired: the median over rounds of netspec's time / the "
        "hand-written model's time in the same round (min: ratio "
        "of the minima); <= 1.02 is the goal"
    )
    return [table]


if __name__ == "__main__":
    if "--keras-worker" in sys.argv:
        i = sys.argv.index("--keras-worker")
        sys.exit(keras_worker("--quick" in sys.argv, int(sys.argv[i + 1])))
