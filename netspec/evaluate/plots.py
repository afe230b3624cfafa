"""The pictures of an evaluation, PNG and SVG (matplotlib's Agg renderer, a Figure of its own,
no pyplot window): the confusion matrix of a classification output (scikit-learn's
ConfusionMatrixDisplay) and predicted against true values of a regression output."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MAX_VALUES = 30  # classes up to which the confusion matrix shows its counts (else colours only)


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, folder: Path, stem: str) -> list[Path]:
    from matplotlib import rc_context

    png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
    with rc_context({"svg.hashsalt": "netspec"}):  # the same evaluation gives the same bytes
        fig.savefig(png, dpi=100, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    return [png, svg]


def confusion_matrix(result: dict, title: str, folder: Path, stem: str) -> list[Path]:
    """The confusion matrix of a classification result (counts, up to MAX_VALUES classes;
    off-diagonal zeros left blank so that the mistakes stand out)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = np.asarray(result["confusion_matrix"])
    n = len(cm)
    side = min(12.0, max(4.0, 0.55 * n + 2.5))
    fig = _figure((side + 0.8, side))
    ax = fig.subplots()
    disp = ConfusionMatrixDisplay(cm, display_labels=result["classes"])
    shown = n <= MAX_VALUES
    disp.plot(ax=ax, cmap="Blues", values_format="d", colorbar=True, include_values=shown)
    for i in range(n if shown else 0):
        for j in range(n):
            if i != j and cm[i, j] == 0:
                disp.text_[i, j].set_text("")
            elif i != j:
                disp.text_[i, j].set_color("#b30000")
                disp.text_[i, j].set_fontweight("bold")
    if n > MAX_VALUES:  # every step-th class named, so that the labels do not overlap
        step = -(-n // MAX_VALUES)
        ticks = list(range(0, n, step))
        ax.set_xticks(ticks, [str(result["classes"][i]) for i in ticks])
        ax.set_yticks(ticks, [str(result["classes"][i]) for i in ticks])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    return _save(fig, folder, stem)


def predicted_vs_true(
    true: np.ndarray, pred: np.ndarray, title: str, folder: Path, stem: str
) -> list[Path]:
    """Every predicted value against its true value, with the line predicted = true."""
    t, p = np.asarray(true).reshape(-1), np.asarray(pred).reshape(-1)
    fig = _figure((5.0, 5.0))
    ax = fig.subplots()
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", linestyle="--", label="ideal")
    ax.scatter(t, p, s=14, alpha=0.7, label="examples")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("true value")
    ax.set_ylabel("predicted value")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    ax.set_title(title, fontsize=10)
    return _save(fig, folder, stem)
