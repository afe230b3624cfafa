"""Canonical weights in and out of a module built from the generated PyTorch source."""

from __future__ import annotations

import numpy as np

from ...ir import Graph
from ...weights import WeightsError, mismatch

SKIP = "num_batches_tracked"


def load_state(module, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights into a module built from the generated source, strictly, in the
    module's own float dtype (num_batches_tracked, not canonical, keeps its value)."""
    import torch

    dtype = next(iter(module.state_dict().values()), torch.zeros(())).dtype
    if not dtype.is_floating_point:
        dtype = torch.float32
    state = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dtype) for k, v in weights.items()}
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(SKIP)]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise WeightsError("weights do not match the module: " + mismatch(missing, extra))
    for k, v in own.items():
        if k.endswith(SKIP) and k not in state:
            state[k] = v
    module.load_state_dict(state, strict=True)


def export_weights(module, graph: Graph) -> dict[str, np.ndarray]:
    """The canonical weights of a module built from `graph`'s PyTorch source, in graph order
    (float32 copies)."""
    state = module.state_dict()
    want = graph.weight_shapes()
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want and not k.endswith(SKIP)]
    if missing or extra:
        raise WeightsError(
            f"the module does not match the spec '{graph.name}': "
            + "; ".join(
                p
                for p in (
                    f"missing {', '.join(missing[:5])}" if missing else "",
                    f"unexpected {', '.join(extra[:5])}" if extra else "",
                )
                if p
            )
        )
    out: dict[str, np.ndarray] = {}
    for k, shape in want.items():
        a = state[k].detach().cpu().float().numpy()
        if tuple(a.shape) != tuple(shape):
            raise WeightsError(f"'{k}' has shape {list(a.shape)}, the spec needs {list(shape)}")
        out[k] = np.array(a, dtype=np.float32, copy=True)
    return out
