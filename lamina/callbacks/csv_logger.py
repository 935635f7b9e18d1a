"""``CSVLogger``: one CSV row per epoch, written as the epoch ends."""

from __future__ import annotations

import collections.abc
import csv
import os
import tempfile

import numpy as np

from lamina.callbacks.callback import Callback


class CSVLogger(Callback):
    """Streams the epoch logs to a CSV file: an ``epoch`` column, then one per log name.

    The columns are the first epoch's names, sorted (as in Keras); a name that first appears
    in a later epoch (validation every few epochs, a callback adding ``learning_rate``) adds a
    column: the file is rewritten with it (earlier rows get ``NA``) into a temporary file that
    then replaces the original, so the file is complete at every moment. Missing values are
    written as ``NA``. Each row is flushed at the end of its epoch.

    Args:
        filename: Path of the CSV file, e.g. ``"run/log.csv"``.
        separator: The field separator.
        append: Append to an existing file (continuing a training) instead of overwriting it;
            the existing header is kept (and extended if needed).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
        >>> logger = CSVLogger(path)
        >>> logger.on_train_begin()
        >>> logger.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.75})
        >>> logger.on_train_end()
        >>> print(open(path).read())
        epoch,loss,val_loss
        0,0.5,0.75

    In training: ``model.fit(..., callbacks=[CSVLogger("training.csv")])``.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.keys = None
        self.csv_file = None
        self._dialect = None

    def on_train_begin(self, logs=None):
        self._close()

        class Dialect(csv.excel):
            delimiter = self.sep

        self._dialect = Dialect
        self.keys = None
        if self.append and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, dialect=Dialect), None)
            if header:
                self.keys = header[1:]  # the first column is "epoch"
            mode = "a"
        else:
            mode = "a" if self.append else "w"
        self.csv_file = open(self.filename, mode, newline="")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.csv_file is None:  # used without on_train_begin
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer().writerow(["epoch", *self.keys])
        new_keys = sorted(key for key in logs if key not in self.keys)
        if new_keys:
            self._add_columns(new_keys)
        self._writer().writerow([epoch, *(_format(logs.get(key, "NA")) for key in self.keys)])
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        self._close()

    def _writer(self):
        return csv.writer(self.csv_file, dialect=self._dialect)

    def _add_columns(self, new_keys):
        """Rewrites the file with extra columns (``NA`` in earlier rows), then swaps it in."""
        self.csv_file.close()
        with open(self.filename, newline="") as f:
            rows = list(csv.reader(f, dialect=self._dialect))
        self.keys = self.keys + new_keys
        directory = os.path.dirname(os.path.abspath(self.filename))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".csv.tmp")
        try:
            with os.fdopen(fd, "w", newline="") as f:
                writer = csv.writer(f, dialect=self._dialect)
                writer.writerow(["epoch", *self.keys])
                writer.writerows(row + ["NA"] * (len(self.keys) + 1 - len(row)) for row in rows[1:])
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.filename)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        self.csv_file = open(self.filename, "a", newline="")

    def _close(self):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = None


def _format(value):
    # As Keras: iterables (but not strings or 0-d arrays) become a quoted "[a, b]".
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if isinstance(value, collections.abc.Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value
