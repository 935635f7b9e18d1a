"""What an outer ``Layer.__call__`` tells the layers called inside it.

``training`` resolves as: explicit argument > the enclosing call's value > the ``call``
signature's default > ``False``. ``call_id`` numbers outermost calls so that ``losses``
can tell this call's ``add_loss`` values from older ones without walking the layer tree.
"""

from __future__ import annotations

import threading


class CallContext(threading.local):
    depth: int = 0
    training: bool | None = None
    call_id: int = 0


context = CallContext()
