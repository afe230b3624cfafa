"""What a generator of Python source needs, whatever the framework (the PyTorch and Keras
targets both use it):

- `names`: legal, unique identifiers in one Python scope (`Namer`), CamelCase class names.
- `text`: docstring text: escaping hostile descriptions, wrapping, the docstring layout.
- `pyfmt`: a small expression tree printed the way `ruff format` prints it.
- `liveness`: which variable holds each value of a straight-line function, where a dead value is
  deleted (`x = f(x)` chains, `del`).
- `run`: executing generated source in a fresh module whose tracebacks show its lines.

Nothing here imports a framework or knows an op.
"""
