"""``pad_sequences``: a list of sequences to one padded array, as
``keras.utils.pad_sequences``."""

from __future__ import annotations

import numpy as np


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (or cut) each sequence to ``maxlen`` steps: a NumPy array ``(len(sequences), maxlen, ...)``.

    ``maxlen`` defaults to the longest sequence. Shorter sequences are filled with ``value``
    at the start (``padding="pre"``, the default) or the end (``"post"``); longer ones lose
    steps at the start (``truncating="pre"``) or the end (``"post"``). Steps may themselves be
    arrays (every non-empty sequence's steps must share one shape). Empty sequences become
    all-``value`` rows. Bad arguments raise a ``ValueError`` naming the argument.

    Example:
        >>> from lamina.utils import pad_sequences
        >>> pad_sequences([[1, 2, 3], [4, 5], [6]]).tolist()
        [[1, 2, 3], [0, 4, 5], [0, 0, 6]]
        >>> pad_sequences([[1, 2, 3], [4]], maxlen=2, padding="post", truncating="post").tolist()
        [[1, 2], [4, 0]]
    """
    if padding not in ("pre", "post"):
        raise ValueError(f"pad_sequences: `padding` must be 'pre' or 'post'; got padding={padding!r}.")
    if truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: `truncating` must be 'pre' or 'post'; got truncating={truncating!r}.")
    if isinstance(sequences, (str, bytes)) or not hasattr(sequences, "__len__"):
        raise ValueError(f"pad_sequences: `sequences` must be a list of sequences; got {type(sequences).__name__}.")
    if maxlen is not None and (isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer))
                               or maxlen < 0):
        raise ValueError(f"pad_sequences: `maxlen` must be a non-negative integer or None; got maxlen={maxlen!r}.")
    is_text_dtype = np.issubdtype(np.dtype(dtype), np.str_) or np.issubdtype(np.dtype(dtype), np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_text_dtype:
        raise ValueError(f"pad_sequences: a string `value` ({value!r}) needs dtype=object or a string dtype; "
                         f"got dtype={dtype!r}.")
    lengths, step_shape = [], None
    for index, sequence in enumerate(sequences):
        if isinstance(sequence, (str, bytes)) or not hasattr(sequence, "__len__"):
            raise ValueError(f"pad_sequences: sequence {index} is not a sequence: {sequence!r}.")
        lengths.append(len(sequence))
        if step_shape is None and len(sequence):
            step_shape = np.asarray(sequence).shape[1:]
    step_shape = step_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    padded = np.full((len(lengths), maxlen) + step_shape, value, dtype=dtype)
    if maxlen == 0:
        return padded
    for index, sequence in enumerate(sequences):
        if not len(sequence):
            continue
        kept = sequence[-maxlen:] if truncating == "pre" else sequence[:maxlen]
        kept = np.asarray(kept, dtype=dtype)
        if kept.shape[1:] != step_shape:
            raise ValueError(f"pad_sequences: the steps of sequence {index} have shape {kept.shape[1:]}, but "
                             f"those of the first non-empty sequence have shape {step_shape}.")
        if padding == "post":
            padded[index, :len(kept)] = kept
        else:
            padded[index, -len(kept):] = kept
    return padded
