"""The op table: every op of the spec language, defined once.

Importing this package registers every op in `OPS`. The JSON Schema (`netspec.schema`), the
docs' op table (`netspec.docs`) and validation (`netspec.lower`) all read it.
"""

from . import activation, conv, linear, merge, norm, pool, recurrent, shape  # noqa: F401
from .base import ACTIVATIONS, INITS, OPS, REQUIRED, Attr, Ctx, Invalid, OpDef

FAMILY_ORDER = [
    "linear",
    "convolution",
    "pooling",
    "normalization",
    "regularization",
    "shape",
    "merge",
    "embedding",
    "recurrent",
    "activation",
]

__all__ = [
    "ACTIVATIONS",
    "FAMILY_ORDER",
    "INITS",
    "OPS",
    "REQUIRED",
    "Attr",
    "Ctx",
    "Invalid",
    "OpDef",
]
