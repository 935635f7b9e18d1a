"""Argument checks of the colour and mixing augmentation layers, read the way Keras 3 reads them.

Keras keeps a parsed ``factor`` and ``value_range`` in the config; these helpers return the same
values (numbers as given, so that a config equals Keras's), after a check that names the layer.

Example:
    >>> from lamina.layers.preprocessing.augmentation_arguments import keras_factor, parse_value_range
    >>> keras_factor(0.3, "factor", "RandomHue 'h'", 0, 1), keras_factor(0.3, "factor", "x", -1, 1)
    ((0, 0.3), (-0.3, 0.3))
    >>> parse_value_range((255, 0), "x")
    [0, 255]
"""

from __future__ import annotations

import jax

from lamina.random import _key


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def keras_factor(factor, name, owner, low, high):
    """``factor`` as Keras's image layers read it: a number ``f`` means ``(max(-f, low), f)``
    (so ``(0, f)`` when ``low`` is 0), a pair is sorted; every value in ``[low, high]``."""
    message = (f"{owner}: `{name}` must be a number or a pair of numbers in [{low}, {high}], "
               f"got {factor!r}.")
    if isinstance(factor, (list, tuple)):
        if len(factor) != 2 or not all(_is_number(v) and low <= v <= high for v in factor):
            raise ValueError(message)
        return tuple(sorted(factor))
    if not _is_number(factor) or not low <= factor <= high:
        raise ValueError(message)
    factor = abs(factor)
    return (max(-factor, low), factor)


def parse_value_range(given, owner, *, keep=False):
    """``(low, high)`` of the images' values, checked. Keras keeps some layers' range sorted in
    a list and others' as given (``keep=True``, a tuple here so a JSON round trip compares
    equal)."""
    if (not isinstance(given, (list, tuple)) or len(given) != 2 or not all(_is_number(v) for v in given)
            or given[0] == given[1]):
        raise ValueError(f"{owner}: `value_range` must be a pair of two different numbers (low, high), "
                         f"got {given!r}.")
    if keep:
        if given[0] > given[1]:
            raise ValueError(f"{owner}: `value_range` must be (low, high) with low < high, got {given!r}.")
        return tuple(given)
    return sorted(given)


def batch_shape(images, *tail):
    """``(batch, *tail)``: one row of draws per image (batch 1 for one image)."""
    return ((images.shape[0] if images.ndim == 4 else 1), *tail)


def keys(seed, count):
    """``count`` independent PRNG keys from one draw of ``seed`` (an int, a key or a
    ``SeedGenerator``, which advances once)."""
    return list(jax.random.split(_key(seed), count))


__all__ = ["batch_shape", "keras_factor", "keys", "parse_value_range"]
