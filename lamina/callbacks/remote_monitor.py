"""``RemoteMonitor``: POST each epoch's logs to a server (Keras 3's callback), with the
standard library's ``urllib`` where Keras needs ``requests``."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings

import numpy as np

from lamina.callbacks._logs import to_python_logs
from lamina.callbacks.callback import Callback

__all__ = ["RemoteMonitor"]

# Seconds to wait for the server: a stalled server costs one warning, not a hung training.
TIMEOUT = 10.0


class RemoteMonitor(Callback):
    """Sends the logs of each epoch to ``root + path`` as an HTTP POST (Keras 3's callback).

    The payload is ``{"epoch": epoch, **logs}`` with the values as Python numbers. By default it
    is JSON inside a form field (``application/x-www-form-urlencoded``, ``field=<json>``), as
    Keras posts it; ``send_as_json=True`` posts the JSON itself as ``application/json``.
    A server that cannot be reached (down, refused, timed out after ``TIMEOUT`` seconds) gives
    Keras's warning ``"Could not reach RemoteMonitor root server at <root>"`` and training goes
    on; an HTTP error status from the server is ignored, as Keras (``requests``) ignores it.

    Args:
        root: the server's root URL.
        path: the path, relative to ``root``, the events are posted to.
        field: the form field holding the JSON (only when ``send_as_json=False``).
        headers: extra HTTP headers, a dict.
        send_as_json: post the JSON as the request body (``application/json``).

    Example:
        >>> import warnings
        >>> monitor = RemoteMonitor(root="http://127.0.0.1:9")  # nothing listens there
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     monitor.on_epoch_end(0, {"loss": 0.25})
        >>> str(caught[0].message)
        'Could not reach RemoteMonitor root server at http://127.0.0.1:9'

    In training: ``model.fit(..., callbacks=[RemoteMonitor(root="http://localhost:9000")])``.
    """

    def __init__(self, root="http://localhost:9000", path="/publish/epoch/end/", field="data", headers=None,
                 send_as_json=False):
        super().__init__()
        self.root = root
        self.path = path
        self.field = field
        self.headers = headers
        self.send_as_json = send_as_json

    def on_epoch_end(self, epoch, logs=None):
        send = {"epoch": epoch}
        for key, value in to_python_logs(logs).items():
            send[key] = _jsonable(value)
        if self.send_as_json:
            body, content_type = json.dumps(send).encode("utf-8"), "application/json"
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        headers = {"Content-Type": content_type, **(self.headers or {})}
        request = urllib.request.Request(self.root + self.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                response.read()
        except urllib.error.HTTPError as error:
            error.close()  # the server answered: requests does not raise for a status either
        except (urllib.error.URLError, OSError, ValueError):
            warnings.warn(f"Could not reach RemoteMonitor root server at {self.root}", stacklevel=2)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
