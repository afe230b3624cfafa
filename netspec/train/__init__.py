"""Training arithmetic: optimizers, losses, learning-rate schedules and metrics, one record each.

PyTorch's formulas and defaults are netspec's meaning; each record carries a float64 numpy
reference of them (see `record.Record`), and every target reproduces that arithmetic (the Keras
side's classes are in `netspec.targets.keras.optimizers` and `.train_layers`). Importing this
package loads no numpy and no framework; `tables()` loads the four record tables.
"""

from __future__ import annotations

from typing import Any


def tables() -> dict[str, dict[str, Any]]:
    """The record tables by kind: optimizer, loss, schedule, metric."""
    from .losses import LOSSES
    from .metrics import METRICS
    from .optimizers import OPTIMIZERS
    from .schedules import SCHEDULES

    return {"optimizer": OPTIMIZERS, "loss": LOSSES, "schedule": SCHEDULES, "metric": METRICS}


__all__ = ["tables"]
