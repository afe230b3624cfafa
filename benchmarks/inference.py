"""Inference: ONNX Runtime on netspec's ONNX vs on `torch.onnx.export`'s ONNX of the same
module, and vs PyTorch eager, at batch 1 and 32; plus static checks of netspec's graphs.

Per network: the spec is compiled to ONNX by netspec with `tools.testing.random_weights`
(batch-norm statistics and biases non-trivial); the hand-written twin (`benchmarks/models.py`)
gets the same canonical weights and is exported in this process by both torch exporters (as
`benchmarks/torch_export.py` does it). Every contender is checked against PyTorch eager with
netspec's parity bound before it is timed. All ORT sessions: CPU EP, intra_op_num_threads=2,
inter_op_num_threads=1, sequential, spin-waiting off (see `ort_session`), default graph
optimizations (ORT_ENABLE_ALL); torch:
set_num_threads(2), inference_mode. Contenders are interleaved round by round; warm-up calls
are excluded; a round times enough consecutive calls to last ~50 ms; the figure is the median
per-call time over the rounds. A control (netspec's file in a second ORT session) runs in the
same rounds: its ratio to netspec's first session is the noise of that cell.
Goals: netspec / exporter <= 1.00 at the median (each exporter); no Transpose node that a
channels-first spec did not ask for (a `permute`, or the documented sequence-first transposes
around a recurrent layer); one node per recurrent layer; every weight an initializer.
"""

from __future__ import annotations

import time

from common import (
    THREADS,
    Context,
    Table,
    calls_for,
    fmt_ratio,
    fmt_s,
    goal,
    paired_ratio,
    rounds_for,
    time_calls,
)

NETS = ["mlp", "resnet18", "resnet50", "char_lstm", "deep_mlp"]
QUICK_NETS = ["resnet50", "char_lstm"]
BATCHES = [1, 32]
RECURRENT = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def ort_session(model_bytes_or_path, optimized_path: str | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = THREADS
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    # The contenders take turns in one process, each with its own thread pool: with ORT's
    # default spin-waiting, the pool that just ran keeps spinning on both cores while the next
    # contender runs (char LSTM, batch 32, interleaved: medians 30-90% above the minima with
    # spinning, within 3-8% without). Spinning off for every ORT session, alike.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    return ort.InferenceSession(model_bytes_or_path, so, providers=["CPUExecutionProvider"])


def graph_facts(model, graph=None) -> dict:
    """Node counts, Transposes (classified for netspec's graphs), recurrent nodes, weights."""
    from onnx import numpy_helper

    nodes = list(model.graph.node)
    facts = {
        "nodes": len(nodes),
        "transpose": sum(n.op_type == "Transpose" for n in nodes),
        "recurrent": sum(n.op_type in RECURRENT.values() for n in nodes),
        "constants": sum(n.op_type == "Constant" for n in nodes),
    }
    init_floats = sum(
        numpy_helper.to_array(t).size for t in model.graph.initializer if t.data_type == 1
    )
    facts["init_floats"] = init_floats
    if graph is not None:
        by_name = {n.name: n for n in graph.nodes}
        unasked = []
        seq_first = 0
        for n in nodes:
            if n.op_type != "Transpose":
                continue
            layer = by_name.get(n.name.rsplit("/", 1)[0])
            if layer is not None and layer.op == "permute":
                continue
            if layer is not None and layer.op in RECURRENT:
                seq_first += 1
                continue
            unasked.append(n.name)
        facts["unasked_transpose"] = unasked
        facts["seq_first_transpose"] = seq_first
        facts["expected_recurrent"] = sum(
            n.attrs["num_layers"] for n in graph.nodes if n.op in RECURRENT
        )
        facts["weight_floats"] = graph.param_count + graph.buffer_count
        # which canonical weights are not initializers under their own name or a derived one
        names = {t.name for t in model.graph.initializer}
        missing = [
            k
            for k in graph.weight_shapes()
            if k not in names and not any(x.startswith(k.rsplit(".", 1)[0] + "/") for x in names)
        ]
        facts["weights_missing"] = missing
    return facts


def signature(g) -> list:
    """A graph's computation without its names: op types, domains, attributes (those spelled
    out at their default value left out), in order."""
    from onnx import AttributeProto, helper

    def default(name: str, value) -> bool:  # attributes spelled out at their default value
        if name == "dilations":
            return all(v == 1 for v in value)
        return {"group": 1, "auto_pad": b"NOTSET", "ceil_mode": 0, "storage_order": 0}.get(
            name, object()
        ) == value

    sig = []
    for n in g.node:
        attrs = tuple(
            sorted(
                (a.name, str(helper.get_attribute_value(a)))
                for a in n.attribute
                if a.type not in (AttributeProto.TENSOR, AttributeProto.GRAPH)
                and not default(a.name, helper.get_attribute_value(a))
            )
        )
        sig.append((n.domain, n.op_type, len(n.input), attrs))
    return sig


def run(ctx: Context) -> list[Table]:
    import onnx
    import torch

    import netspec
    from tools.testing import max_violation, random_weights

    import models
    from torch_export import export

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    nets = QUICK_NETS if ctx.quick else NETS
    d = ctx.tmp / "inference"
    d.mkdir(parents=True, exist_ok=True)
    timing = Table(
        f"Inference on CPU: ONNX Runtime and PyTorch eager, median per call over "
        f">= {ctx.repeat} rounds (min in parentheses)",
        [
            "network",
            "batch",
            "ORT netspec",
            "ORT dynamo",
            "ORT legacy",
            "torch eager",
            "netspec / dynamo",
            "netspec / legacy",
            "netspec / eager",
            "A/A",
            "goal",
        ],
    )
    structure = Table(
        "Inference: graph structure (netspec / dynamo / legacy)",
        [
            "network",
            "nodes",
            "nodes after ORT opt.",
            "Transpose",
            "unasked Transpose (netspec)",
            "recurrent nodes (expected)",
            "weights as initializers",
            "ORT runs the same graph (dynamo / legacy)",
            "goal",
        ],
    )
    all_ok = True
    for name in nets:
        net = models.NETS[name]
        ctx.log(f"  inference {name}: building")
        graph = netspec.load(net.spec)
        w = random_weights(graph, seed=0)
        ns_model = netspec.compile(graph, target="onnx", weights=w)
        ns_path = d / f"{name}.netspec.onnx"
        ns_path.write_bytes(ns_model.SerializeToString())
        module = models.load_canonical(net.build(), w)
        paths = {"netspec": ns_path}
        errors = {}
        for exp in ("dynamo", "legacy"):
            p = d / f"{name}.{exp}.onnx"
            try:
                export(name, str(p), exp, model=module)
                paths[exp] = p
            except Exception as e:  # noqa: BLE001 - reported
                errors[exp] = f"{type(e).__name__}: {str(e)[:150]}"
                ctx.log(f"    {exp} export failed: {errors[exp]}")
        protos = {k: onnx.load(str(p)) for k, p in paths.items()}
        sessions, opt_nodes, opt_sig = {}, {}, {}
        for k, p in paths.items():
            opt = d / f"{name}.{k}.ort.onnx"
            try:
                sessions[k] = ort_session(str(p), str(opt))
                og = onnx.load(str(opt), load_external_data=False).graph
                opt_nodes[k] = len(og.node)
                opt_sig[k] = signature(og)
            except Exception as e:  # noqa: BLE001
                errors[k] = f"ORT: {type(e).__name__}: {str(e)[:150]}"
                ctx.log(f"    ORT session for {k} failed: {errors[k]}")
                sessions.pop(k, None)

        # the control: a second session on netspec's own file, timed like the others. Its ratio
        # to the first (an A/A comparison) is this cell's measurement noise.
        if "netspec" in sessions:
            sessions["control"] = ort_session(str(ns_path))
        facts = {k: graph_facts(m, graph if k == "netspec" else None) for k, m in protos.items()}
        f = facts["netspec"]
        rec_ok = f["recurrent"] == f["expected_recurrent"]
        init_ok = (
            not f["weights_missing"]
            and f["constants"] == 0
            and f["init_floats"] >= f["weight_floats"]
        )
        struct_ok = not f["unasked_transpose"] and rec_ok and init_ok
        all_ok &= struct_ok

        def three(key, facts=facts):
            return " / ".join(
                str(facts[k][key]) if k in facts else "-" for k in ("netspec", "dynamo", "legacy")
            )

        structure.add(
            name,
            three("nodes"),
            " / ".join(str(opt_nodes.get(k, "-")) for k in ("netspec", "dynamo", "legacy")),
            three("transpose"),
            f"{len(f['unasked_transpose'])}"
            + (
                f" (+{f['seq_first_transpose']} sequence-first)" if f["seq_first_transpose"] else ""
            ),
            f"{three('recurrent')} ({f['expected_recurrent']})",
            "yes" if init_ok else f"NO: {f['weights_missing'][:3]}, {f['constants']} Constant",
            " / ".join(
                ("yes" if opt_sig.get(k) == opt_sig.get("netspec") else "no")
                if k in opt_sig
                else "-"
                for k in ("dynamo", "legacy")
            ),
            goal(struct_ok),
        )
        if f["unasked_transpose"]:
            structure.notes.append(f"{name}: unasked Transposes {f['unasked_transpose'][:5]}")

        for batch in BATCHES:
            x_t = net.example(batch)
            x = x_t.numpy()
            feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
            with torch.inference_mode():
                ref = module(x_t).numpy()
            fns = {}
            for k, s in sessions.items():
                got = s.run(None, feeds[k])[0]
                v = max_violation(got, ref)
                if v > 0:
                    errors[k] = f"batch {batch}: outside the parity bound by {v:.2g}"
                    ctx.log(f"    {k}: {errors[k]}")
                fns[k] = lambda s=s, fd=feeds[k]: s.run(None, fd)

            def eager(x_t=x_t, module=module):
                with torch.inference_mode():
                    return module(x_t)

            fns["eager"] = eager
            # one round lasts ~50 ms at least: calls per round from a single warm call
            fns["netspec"]()
            t0 = time.perf_counter()
            fns["netspec"]()
            t_call = time.perf_counter() - t0
            number = calls_for(t_call)
            rounds = rounds_for(t_call, number, ctx.repeat, 0.7 if ctx.quick else 2.5)
            ctx.log(f"  inference {name} batch {batch}: {rounds} rounds x {number} call(s)")
            s = time_calls(fns, rounds, number=number, warmup=2)
            r = {
                k: (paired_ratio(s["netspec"], s[k]) if k in s else float("nan"))
                for k in ("dynamo", "legacy", "eager", "control")
            }
            rmin = {
                k: (s["netspec"].min / s[k].min if k in s and s[k].ok else float("nan"))
                for k in ("dynamo", "legacy", "eager")
            }
            # Above 1.00 is a tie, not a slower graph, when ORT runs the same graph for both
            # (same nodes, inputs and attributes after its optimizations), or when the excess
            # is within the noise of the cell: the largest deviation from 1.00 among the
            # comparisons of identical computations in the same rounds (netspec's file in a
            # second session, and any exporter's graph that ORT turns into netspec's).
            same = [
                k
                for k in ("dynamo", "legacy")
                if r[k] == r[k] and r[k] > 1.0 and opt_sig.get(k) == opt_sig.get("netspec")
            ]
            identical = [
                "control",
                *(
                    k
                    for k in ("dynamo", "legacy")
                    if r[k] == r[k] and opt_sig.get(k) == opt_sig.get("netspec")
                ),
            ]
            noise = max((abs(r[k] - 1.0) for k in identical if r[k] == r[k]), default=0.0)
            within = [
                k
                for k in ("dynamo", "legacy")
                if k not in same and r[k] == r[k] and 1.0 < r[k] <= 1.0 + noise
            ]
            judged = [
                r[k] for k in ("dynamo", "legacy") if k not in (*same, *within) and r[k] == r[k]
            ]
            ok = all(v <= 1.0 for v in judged) if judged or same or within else None
            all_ok &= bool(ok) if ok is not None else True

            def cell(k, s=s):
                if k not in s:
                    return "failed"
                return f"{fmt_s(s[k].median)} ({fmt_s(s[k].min)})" if s[k].ok else "failed"

            notes = [f"tie with {k}: same graph" for k in same]
            notes += [f"tie with {k}: within the noise, {noise:.1%}" for k in within]
            timing.add(
                name,
                batch,
                cell("netspec"),
                cell("dynamo"),
                cell("legacy"),
                cell("eager"),
                *(
                    f"{fmt_ratio(r[k], 3)} ({fmt_ratio(rmin[k], 3)})"
                    for k in ("dynamo", "legacy", "eager")
                ),
                fmt_ratio(r["control"], 3),
                goal(ok) + (f" ({'; '.join(notes)})" if notes else ""),
            )
            if ok is False:
                worst = max(
                    (k for k in ("dynamo", "legacy") if k not in (*same, *within) and r[k] == r[k]),
                    key=lambda k: r[k],
                )
                ctx.findings.append(
                    f"inference: {name} batch {batch}: netspec / {worst} = "
                    f"{fmt_ratio(r[worst], 3)} (min ratio "
                    f"{fmt_ratio(rmin[worst], 3)}; A/A "
                    f"{fmt_ratio(r['control'], 3)}) (goal <= 1.00): MISSED"
                )
            for k in (*same, *within):
                why = (
                    "ORT runs the same graph for both"
                    if k in same
                    else (f"within the noise of identical computations ({noise:.1%})")
                )
                ctx.findings.append(
                    f"inference: {name} batch {batch}: netspec / {k} = "
                    f"{fmt_ratio(r[k], 3)}: a tie, {why}"
                )
        for k, e in errors.items():
            timing.notes.append(f"{name}, {k}: {e}")
        del sessions
    timing.notes.append(
        "ratios are paired: the median over rounds of netspec's time / the "
        "other's time in the same round (in parentheses: the ratio of the "
        "minima): <= 1.00 means "
        "netspec's graph is at least as fast. A/A: netspec's file in a second "
        "ORT session, timed in the same rounds (netspec / control). The noise "
        "of a cell is the largest deviation from 1.00 among its comparisons of "
        "identical computations (the A/A, and an exporter whose graph ORT "
        "turns into netspec's); a ratio above 1.00 within it is a tie. Parity with "
        "eager is checked before timing (|a-b| <= 1e-5 + 1e-4|b|)."
    )
    structure.notes.append(
        "'nodes after ORT opt.' counts the graph ONNX Runtime runs "
        "(optimized_model_filepath, ORT_ENABLE_ALL); Transpose counts are "
        "of the files as written; 'the same graph': the optimized graphs "
        "have the same nodes (domain, op type, inputs, non-default attributes) "
        "in the same order, names aside"
    )
    ctx.findings.append(f"inference: all timing and structure goals met: {goal(all_ok)}")
    return [timing, structure]
