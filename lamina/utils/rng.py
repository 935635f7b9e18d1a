"""``set_random_seed``: one call that makes a whole run repeatable."""

from __future__ import annotations

import numpy as np

from lamina import random


def set_random_seed(seed):
    """Seed every generator a lamina program draws from: Python's ``random``, NumPy's global
    generator (``np.random.seed(seed % 2**32)``) and lamina's global seed stream (the one
    unseeded initializers, ``Dropout`` and other random layers, and ``fit``'s shuffling draw
    from), exactly as ``lm.random.set_seed(seed)`` does. Unlike Keras, nothing is done for
    TensorFlow or PyTorch: seed their generators yourself if your input pipeline uses them.

    Example:
        >>> import numpy as np
        >>> import lamina as lm
        >>> lm.utils.set_random_seed(1); a = lm.layers.Dense(2)(np.ones((1, 3)))
        >>> lm.utils.set_random_seed(1); b = lm.layers.Dense(2)(np.ones((1, 3)))
        >>> bool((a == b).all())
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"set_random_seed: `seed` must be an integer; got seed={seed!r} "
                         f"(of type {type(seed).__name__}).")
    random.set_seed(int(seed))
