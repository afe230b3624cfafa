"""Random valid specs for differential testing, by job:

- `generate`: draw a spec from a seed (each op's sampler and weights come from its record),
- `yamltext`: write it as YAML text,
- `shrink`: reduce a failing spec to a small one that still fails,
- `run`: run a spec on each installed target,
- `noise`: compare targets' outputs, allowing for a spec's float32 noise.
"""

from .generate import FAMILIES, Draw, Generated, generate, random_spec
from .noise import NOISE_FACTOR, disagreements, float64_noise
from .run import available_targets, from_keras_layout, run_target, to_keras_layout
from .shrink import shrink
from .yamltext import quote, to_yaml

__all__ = [
    "FAMILIES",
    "NOISE_FACTOR",
    "Draw",
    "Generated",
    "available_targets",
    "disagreements",
    "float64_noise",
    "from_keras_layout",
    "generate",
    "quote",
    "random_spec",
    "run_target",
    "shrink",
    "to_keras_layout",
    "to_yaml",
]
