"""``clear_session``: start naming layers afresh, as ``keras.utils.clear_session``."""

from __future__ import annotations

import gc

from lamina.core.naming import reset_names


def clear_session(free_memory=True):
    """Forget the auto-generated names handed out so far, so the next ``Dense`` is ``dense``
    again, and (``free_memory=True``) run Python's garbage collector.

    lamina keeps no other global graph or session state, so this is all there is to clear:
    existing layers and models keep working, and the global seed (``lm.random.set_seed``)
    is left as it is. Two layers made before and after the call may share a name; a model
    refuses duplicate layer names when it is built.

    Example:
        >>> import lamina as lm
        >>> lm.utils.clear_session()
        >>> lm.layers.Dense(2).name, lm.layers.Dense(2).name
        ('dense', 'dense_1')
        >>> lm.utils.clear_session()
        >>> lm.layers.Dense(2).name
        'dense'
    """
    reset_names()
    if free_memory:
        gc.collect()
