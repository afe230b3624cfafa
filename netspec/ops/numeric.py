"""numpy helpers for the ops' float64 reference implementations.

Imported only inside the reference functions, so loading the op table imports no numpy. Layouts
are the logical ones: batch first, channels first; padding pairs are (before, after) per spatial
axis, first spatial axis first, as the IR holds them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad(x: np.ndarray, pairs, value: float = 0.0) -> np.ndarray:
    """Pad the spatial axes (after batch and channels) by the IR's (before, after) pairs."""
    return np.pad(x, [(0, 0), (0, 0), *[tuple(p) for p in pairs]], constant_values=value)


def windows(x: np.ndarray, kernel, stride, dilation=None) -> np.ndarray:
    """[N, C, *spatial] -> [N, C, *out, *kernel]: every window a convolution or pool reads."""
    n = len(kernel)
    dilation = dilation or (1,) * n
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    axes = tuple(range(2, 2 + n))
    w = sliding_window_view(x, span, axis=axes)
    pick = (slice(None),) * 2 + tuple(slice(None, None, s) for s in stride)
    pick += tuple(slice(None, None, d) for d in dilation)
    return w[pick]


def channel(v: np.ndarray, rank: int) -> np.ndarray:
    """A per-channel vector shaped to broadcast on axis 1 of an array of this rank."""
    return v.reshape((1, -1) + (1,) * (rank - 2))


def sigmoid(x: np.ndarray) -> np.ndarray:
    # in two halves, so that exp never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


ERF = np.vectorize(math.erf, otypes=[np.float64])


def recurrent(kind: str, x: np.ndarray, p: dict, a: dict) -> np.ndarray:
    """PyTorch's RNN (tanh), LSTM (gates i, f, g, o) and GRU (gates r, z, n; reset after the
    recurrent product), batch first; `return_sequences: false` gives the last layer's final
    state of each direction (forward after the last step, backward after the first),
    concatenated forward first."""
    seq = x
    n, steps = x.shape[:2]
    units = a["units"]
    dirs = ["", "_reverse"][: 2 if a["bidirectional"] else 1]
    finals: list[np.ndarray] = []
    for layer in range(a["num_layers"]):
        outs, finals = [], []
        for sfx in dirs:
            w_ih, w_hh = p[f"weight_ih_l{layer}{sfx}"], p[f"weight_hh_l{layer}{sfx}"]
            b_ih, b_hh = p[f"bias_ih_l{layer}{sfx}"], p[f"bias_hh_l{layer}{sfx}"]
            xs = seq[:, ::-1] if sfx else seq
            h = np.zeros((n, units))
            c = np.zeros((n, units))
            hs = []
            for t in range(steps):
                gi = xs[:, t] @ w_ih.T + b_ih
                gh = h @ w_hh.T + b_hh
                if kind == "rnn":
                    h = np.tanh(gi + gh)
                elif kind == "lstm":
                    i, f, g, o = np.split(gi + gh, 4, axis=1)
                    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                    h = sigmoid(o) * np.tanh(c)
                else:
                    ir, iz, in_ = np.split(gi, 3, axis=1)
                    hr, hz, hn = np.split(gh, 3, axis=1)
                    r, z = sigmoid(ir + hr), sigmoid(iz + hz)
                    h = (1 - z) * np.tanh(in_ + r * hn) + z * h
                hs.append(h)
            out = np.stack(hs, 1) if hs else np.zeros((n, 0, units))
            outs.append(out[:, ::-1] if sfx else out)
            finals.append(h)
        seq = np.concatenate(outs, -1)
    return seq if a["return_sequences"] else np.concatenate(finals, -1)
