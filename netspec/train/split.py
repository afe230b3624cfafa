"""Reproducible train / validation / test splits and netspec's batch order.

Both come from one seed, through NumPy's PCG64 bit generator seeded by a SeedSequence, and use
only the generator's raw 64-bit output: NumPy guarantees that stream across versions and
platforms, which it does not for `Generator.permutation`. A permutation of n items is the
stable argsort of n raw draws, one line that a standalone PyTorch or Keras script repeats:

    order = np.argsort(np.random.PCG64(np.random.SeedSequence([seed, 2, epoch])).random_raw(n),
                       kind="stable")

The words after the seed name the purpose (1: the split, 2: an epoch's order), so the split
and the epochs draw independent streams; every purpose uses the same number of words (SeedSequence
pads short entropy with zeros, so [s, 2] and [s, 2, 0] would collide). See docs/training-data.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import SpecError

SPLIT = 1  # purpose words in the seed sequence
EPOCH = 2
MAX_SEED = 2**63 - 1


def permutation(n: int, seed: int, purpose: int, index: int = 0) -> np.ndarray:
    """A permutation of range(n) determined by (seed, purpose, index) alone."""
    if isinstance(seed, bool) or not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise SpecError(f"seed must be a whole number in [0, 2**63), not {seed!r}")
    raw = np.random.PCG64(np.random.SeedSequence([seed, purpose, index])).random_raw(n)
    return np.argsort(raw, kind="stable")


@dataclass(frozen=True)
class Split:
    """Row indices of each part, ascending (so a memory-mapped file is read in order)."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_rows(n: int, seed: int, validation: float = 0.0, test: float = 0.0) -> Split:
    """Split n rows by fractions: a permutation of the rows from `seed`; its first
    round(n * validation) rows are the validation set, the next round(n * test) the test set,
    the rest the training set (round: halves up; a fraction above 0 takes at least one row).
    A validation or test set read from its own file is not split here: pass 0 for it."""
    for name, frac in (("validation", validation), ("test", test)):
        if not (isinstance(frac, int | float) and 0 <= frac < 1):
            raise SpecError(f"the {name} fraction must be in [0, 1), not {frac!r}")
    n_val, n_test = _count(n, validation), _count(n, test)
    if n_val + n_test >= n:
        raise SpecError(
            f"validation {validation:g} and test {test:g} of {n} examples leave none for training",
            hint="use smaller fractions, or more data",
        )
    order = permutation(n, seed, SPLIT)
    parts = np.split(order, [n_val, n_val + n_test])
    val, tst, train = (np.sort(p) for p in parts)
    return Split(train=train, validation=val, test=tst)


def _count(n: int, frac: float) -> int:
    """round(n * frac), halves up, computed on the fraction as written (0.35 is 35/100, not
    the float just below it), and at least 1 for a fraction above 0."""
    if frac == 0:
        return 0
    return max(1, math.floor(n * Fraction(repr(float(frac))) + Fraction(1, 2)))


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order in which epoch `epoch` (0-based) visits positions 0..n-1 of the training set:
    a fresh permutation each epoch, the same on every run and framework; 0..n-1 unshuffled."""
    if not shuffle:
        return np.arange(n)
    return permutation(n, seed, EPOCH, epoch)


def batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive batches of `order`; the last one keeps the remainder (PyTorch's default
    drop_last=False and Keras's fit do the same), so an epoch sees every example once."""
    if batch_size < 1:
        raise SpecError(f"batch size must be at least 1, not {batch_size}")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def batch_count(n: int, batch_size: int) -> int:
    """Batches in one epoch of n examples (the last may be partial)."""
    return -(-n // batch_size)
