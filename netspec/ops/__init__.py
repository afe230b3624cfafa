"""The op table: every op of the spec language, defined once.

Importing this package registers every op in `OPS`. An op's record (`OpDef`) holds everything
about it that no target owns: attributes and defaults, the shape rule, a float64 numpy reference,
example cases, how the random-spec generator samples it and how its weights start. The JSON
Schema (`netspec.schema`), the docs' op table, validation (`netspec.lower`), `init_weights`,
the reference interpreter, the per-op tests and the random-spec generator all read it.
"""

from . import (  # noqa: F401
    activation,
    adaptive,
    attention,
    conv,
    conv3d,
    linear,
    merge,
    norm,
    norm2,
    pool,
    recurrent,
    reduce,
    regularize,
    shape,
    tensor,
    upsample,
)
from .base import ACTIVATIONS, INITS, OPS, REQUIRED, Attr, Ctx, Example, Invalid, OpDef

FAMILY_ORDER = [
    "linear",
    "convolution",
    "pooling",
    "normalization",
    "regularization",
    "shape",
    "merge",
    "tensor",
    "embedding",
    "recurrent",
    "attention",
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
    "Example",
    "Invalid",
    "OpDef",
]
