"""Optimizer state in a Keras 3 weights file (``optimizer/vars/<i>``), for the optimizers whose
slots mean the same in both libraries.

Keras lists ``iterations``, ``learning_rate``, then, for each trainable variable in
``model.trainable_variables`` order, its slots: Adam and AdamW ``momentum`` then ``velocity``
(lamina's ``mu`` and ``nu``: the same moving averages), RMSprop without momentum or centering
``velocity`` (``nu``), SGD without momentum nothing more; Adadelta ``accumulated_grad`` and
``accumulated_delta_var`` (optax's ``e_g`` and ``e_x``), Lamb ``momentum`` and ``velocity`` (``mu``
and ``nu``), Adamax, Nadam, Ftrl, Adafactor and Muon their Keras-named slots (Muon's
``velocity`` for its AdamW weights only), then Nadam's one ``u_product``; Adagrad ``accumulator``
(optax's ``sum_of_squares``) and Lion ``momentum`` (optax's ``mu``). An optimizer written the
Keras way (``update_step``, as ``ScheduleFreeAdamW``) has Keras's own order
(``keras_file_variables()``). Other optimizers (and those with EMA or gradient accumulation, which
add variables) are not mapped: their state is left out when saving and skipped, with a
warning, when loading, as Keras does when the optimizers differ.
"""

from __future__ import annotations

_SLOTS = {"Adam": ("mu", "nu"), "AdamW": ("mu", "nu"), "RMSprop": ("nu",), "SGD": (),
          "Adadelta": ("e_g", "e_x"), "Adafactor": ("r", "c", "velocity"), "Adamax": ("momentum", "norm"),
          "Ftrl": ("accumulator", "linear"), "Lamb": ("mu", "nu"), "Nadam": ("momentum", "velocity"),
          "Muon": ("momentum", "velocity"), "Adagrad": ("sum_of_squares",), "Lion": ("mu",)}
# Slots that only some weights have (Keras gives Muon's 2-D weights no velocity).
_OPTIONAL = {"Muon": ("velocity",)}
# Keras's optimizer-wide variables, after every weight's slots.
_TRAILING = {"Nadam": ("u_product",)}
PREFIX = "optimizer/vars/"


def keras_optimizer_pairs(model):
    """``([(dataset key, variable)], counters)`` for ``model``'s optimizer in Keras's
    order, or ``None`` when it is not one this module maps; ``counters`` are lamina's extra
    step counters (optax's ``count``), which follow ``iterations``."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    found = _keras_order(optimizer, model.trainable_weights)
    if found is None:
        return None
    ordered, counters = found
    return [(f"{PREFIX}{index}", variable) for index, variable in enumerate(ordered)], counters


def _keras_order(optimizer, weights):
    """``(variables in Keras's order, optax counters)`` for ``optimizer`` built on ``weights``
    (in that order), or ``None``."""
    # An optimizer written the Keras way (update_step) lists its variables in Keras's order.
    keras_order = getattr(optimizer, "keras_file_variables", lambda: None)()
    if keras_order is not None:
        return keras_order, []
    parts = getattr(optimizer, "keras_file_parts", None)
    if parts is not None:
        # A MultiOptimizer: its own variables, then each inner optimizer's on its weights. The
        # inner optimizers' optax counters take the MultiOptimizer's iterations: in fit, every
        # inner optimizer steps at every step.
        own, inner = parts()
        ordered, counters = list(own), []
        for inner_optimizer, inner_weights in inner:
            found = _keras_order(inner_optimizer, inner_weights)
            if found is None:
                return None
            ordered += found[0]
            counters += found[1]
        return ordered, counters
    fields = _SLOTS.get(type(optimizer).__name__)
    if fields is None or getattr(optimizer, "use_ema", False) \
            or getattr(optimizer, "gradient_accumulation_steps", None):
        return None
    if type(optimizer).__name__ == "RMSprop" and (optimizer.momentum or optimizer.centered):
        return None
    if type(optimizer).__name__ == "SGD" and optimizer.momentum:
        return None  # Keras keeps -lr * velocity, optax the raw trace: not the same numbers
    scalars, slots = {}, {}
    for field, variable, weight in optimizer.state_items():
        if weight is None:
            scalars.setdefault(field, variable)
        else:
            slots[(field, id(weight))] = variable
    trailing = _TRAILING.get(type(optimizer).__name__, ())
    if "iterations" not in scalars or "learning_rate" not in scalars or set(scalars) - {"iterations", "learning_rate",
                                                                                       "count", *trailing}:
        return None
    ordered = [scalars["iterations"], scalars["learning_rate"]]
    # Before its first step an optimizer has no slots yet: Keras then saves the two counters only.
    for weight in weights if optimizer.built else ():
        for field in fields:
            if (field, id(weight)) not in slots:
                if field in _OPTIONAL.get(type(optimizer).__name__, ()):
                    continue
                return None
            ordered.append(slots[(field, id(weight))])
    if optimizer.built:
        if any(field not in scalars for field in trailing):
            return None
        ordered += [scalars[field] for field in trailing]
    counters = [scalars["count"]] if "count" in scalars else []
    return ordered, counters
