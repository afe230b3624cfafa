"""Hand-written reference models that the example specs in `specs/` must match."""
