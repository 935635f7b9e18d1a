"""``lm.utils.plot_history``: training curves from a ``History``, with matplotlib.

One subplot per metric (loss first), the training values against the epoch and, where the
history has them, the ``val_`` values beside them. matplotlib (the ``plot`` extra) is
imported only when the function runs; without a display matplotlib draws with Agg.
"""

from __future__ import annotations

import math
import os


def _import_pyplot():
    try:
        import matplotlib.pyplot as pyplot
    except ImportError as error:
        raise ImportError('plot_history needs matplotlib, which is not installed: pip install "lamina[plot]".') from error
    return pyplot


def _logs(history):
    """``(values by name, epoch numbers)`` from a ``History`` or a ``{name: [values]}`` dict."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict):
        raise TypeError(f"plot_history takes the History that fit() returns (or its .history dict), "
                        f"got {type(history).__name__}.")
    logs = {str(name): [float(v) for v in values] for name, values in logs.items()}
    lengths = {len(values) for values in logs.values()}
    if not logs or lengths == {0}:
        raise ValueError("plot_history: the history is empty (fit() recorded no epoch).")
    epochs = list(getattr(history, "epoch", None) or [])
    if len(epochs) != max(lengths):  # a dict, or a History that several fit() calls extended
        epochs = list(range(max(lengths)))
    return logs, [epoch + 1 for epoch in epochs]  # numbered from 1, as the progress bar counts


def _metric_names(logs, metrics):
    available = []
    for name in logs:
        base = name[4:] if name.startswith("val_") else name
        if base not in available:
            available.append(base)
    if "loss" in available:
        available.remove("loss")
        available.insert(0, "loss")
    if metrics is None:
        return available
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [name for name in metrics if name not in available]
    if unknown or not metrics:
        raise ValueError(f"plot_history: no values for {unknown or 'any metric'} in the history; "
                         f"it has {available}.")
    return metrics


def plot_history(history, metrics=None, to_file=None):
    """Draw the loss and each metric per epoch, training against validation.

    Args:
        history: What ``fit`` returns (an ``lm.callbacks.History``) or its ``.history`` dict.
        metrics: Names to draw (``"loss"``, ``"accuracy"``, ...; the ``val_`` curve of each
            comes with it); ``None`` draws every one, loss first.
        to_file: Also save the figure there (PNG, SVG, PDF ... by the extension).

    Returns:
        The ``matplotlib.figure.Figure``: one subplot per metric, with the lines
        ``"train"`` and ``"validation"`` (when the history has ``val_`` values). It is made
        with pyplot, so ``plt.show()`` and notebooks display it; in a loop, free each with
        ``plt.close(figure)``.

    Example:
        >>> import lamina as lm
        >>> history = {"loss": [0.9, 0.5, 0.4], "val_loss": [1.0, 0.7, 0.6], "accuracy": [0.5, 0.7, 0.8]}
        >>> figure = lm.utils.plot_history(history)
        >>> [(ax.get_title(), [line.get_label() for line in ax.get_lines()]) for ax in figure.axes]
        [('loss', ['train', 'validation']), ('accuracy', ['train'])]
    """
    logs, epochs = _logs(history)
    names = _metric_names(logs, metrics)
    pyplot = _import_pyplot()
    from matplotlib.ticker import MaxNLocator

    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for key, label, style in ((name, "train", "-o"), (f"val_{name}", "validation", "--o")):
            values = logs.get(key)
            if values:
                ax.plot(epochs[:len(values)], values, style, markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.5
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    for ax in axes.flat[len(names):]:
        figure.delaxes(ax)
    figure.tight_layout()
    if to_file is not None:
        figure.savefig(os.fspath(to_file))
    return figure


__all__ = ["plot_history"]
