"""netspec's data rules as the generated training scripts write them (docs/training-data.md):
one text for the PyTorch and the Keras script, pasted by both generators. netspec itself
follows the same rules in netspec/train/split.py; the tests run the scripts against it (the
same splits, the same batches, the same weights).

The text uses the script's `np`, `math`, `Fraction`, `SEED` and `SHUFFLE`.
"""

ORDER_FUNCTIONS = '''
def permutation(n, purpose, index=0):
    """netspec's permutation of n rows: the stable argsort of raw PCG64 draws seeded by
    [SEED, purpose, index] (purpose 1: the split, 2: an epoch's order)."""
    seeds = np.random.SeedSequence([SEED, purpose, index])
    return np.argsort(np.random.PCG64(seeds).random_raw(n), kind="stable")


def batch_order(n, epoch):
    """The order in which epoch `epoch` (from 0) visits the n training rows."""
    return permutation(n, 2, epoch) if SHUFFLE else np.arange(n)


def count(n, fraction):
    """round(n * fraction), halves up, and at least 1 for a fraction above 0; 0 for a part
    read from a file of its own."""
    if isinstance(fraction, str) or not fraction:
        return 0
    return max(1, math.floor(n * Fraction(repr(float(fraction))) + Fraction(1, 2)))
'''
