"""Write random inputs for a spec as .npy files: scripts/make_inputs.py SPEC OUTDIR."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tools/ is not installed

import netspec  # noqa: E402
from tools.testing import random_inputs  # noqa: E402

graph = netspec.load(sys.argv[1])
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for name, array in random_inputs(graph, batch=1).items():
    np.save(out / f"{name}.npy", array)
    print(out / f"{name}.npy", array.shape, array.dtype)
