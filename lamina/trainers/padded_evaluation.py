"""``evaluate``'s padded last batch: the loss and metrics of its real rows only.

``evaluate`` (and ``fit``'s validation) on in-memory arrays pads a partial last batch to a
size it has already compiled, as ``predict`` does, so that any number of input sizes costs at
most two programs per batch size (issue 10 item 4). Predictions of padding rows are simply
dropped; a loss and metrics must instead not see them. Every single-batch evaluation step is
therefore compiled with the number of real rows as a traced argument (a whole batch passes
its size), and ``padded_test_step`` — ``Trainer.test_step`` with that count — hands a
boolean row mask to the compiled loss and metrics:

- a loss merges it into the mask of its per-sample losses before the reduction, as Keras
  merges a Keras mask: ``"sum_over_batch_size"`` then divides by the real entries,
  ``"sum"`` and ``"mean_with_sample_weight"`` ignore the padding;
- a metric gets it as a sample weight (times the user's), which every built-in metric reads
  as "this row does not count" (a test checks each one against unpadded batches);
- the loss trackers weigh the batch by its real rows.

What cannot be corrected raises ``PaddingNotSupported`` while the step is traced, and the
trainer then evaluates exact-sized batches (one program per last-batch size, as Keras does):
a loss or metric the user wrote as a class (``Metric.update_state`` may ignore sample
weights), a loss whose values lose the batch axis or use ``reduction="none"``, ``add_loss``
terms computed in the call (they may depend on every row), and a call that writes the
model's variables. The static conditions (an overridden ``test_step``, ``compute_loss`` or
``compute_metrics``, metrics held in attributes, eager steps, a distribution) are checked
before any padding (``Trainer._lm_pads_evaluation``).

Like ``predict``'s padding, this assumes a layer's output row depends only on its input row
in inference (true of every built-in layer; a user layer that mixes rows at inference would
see the padding rows, which repeat the last sample).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina import losses as losses_module
from lamina.data import unpack_batch
from lamina.metrics.regression import R2Score


class PaddingNotSupported(Exception):
    """Raised while a padded evaluation step is traced: its result would count the padding."""


def padded_test_step(model, data, rows):
    """``Trainer.test_step`` on a batch whose rows from ``rows`` on are padding.

    ``rows`` is a traced integer: one compiled program serves every count."""
    x, y, sample_weight = unpack_batch(data)
    real = jnp.arange(jax.tree_util.tree_leaves(x)[0].shape[0]) < rows
    before = [variable.value for variable in model.variables]
    y_pred = model(x, training=False)
    if any(variable.value is not value for variable, value in zip(model.variables, before)):
        raise PaddingNotSupported("the model's call writes its variables")
    extra = model.losses
    if len(extra) > sum(1 for v in model.trainable_weights if v.regularizer is not None):
        raise PaddingNotSupported("the call adds losses (add_loss, activity regularizers)")
    loss = 0.0
    if model.compiled_loss is not None:
        loss = model.compiled_loss(y, y_pred, sample_weight, real_rows=real)
    if extra:
        loss = loss + sum(extra)
    model._lm_loss_tracker.update_state(loss, sample_weight=rows)
    model.compiled_metrics.update_state(y, y_pred, sample_weight, real_rows=real)
    model.compiled_weighted_metrics.update_state(y, y_pred, sample_weight, real_rows=real)
    return model.get_metrics_result()


def loss_of_real_rows(loss, y_true, y_pred, sample_weight, real):
    """``loss(y_true, y_pred, sample_weight)`` over the rows where ``real`` is True."""
    if type(loss).__call__ is not losses_module.Loss.__call__ or loss.reduction in (None, "none"):
        raise PaddingNotSupported(f"the loss '{loss.name}' reduces in its own way")
    y_true, y_pred = loss._convert(y_true, labels=True), loss._convert(y_pred)
    values, mask = loss._call_with_mask(y_true, y_pred)
    values = jnp.asarray(values)
    if values.ndim == 0 or values.shape[0] != real.shape[0]:
        raise PaddingNotSupported(f"the loss '{loss.name}' returns no value per sample")
    if loss.reduction == "mean_with_sample_weight" and sample_weight is not None and values.ndim > 1:
        # Keras divides by the sum of the (un-broadcast) weights: no mask reproduces that.
        raise PaddingNotSupported(f"the loss '{loss.name}' divides by the sum of per-sample weights")
    rows = jnp.broadcast_to(real.reshape(real.shape + (1,) * (values.ndim - 1)), values.shape)
    mask = rows if mask is None else jnp.logical_and(rows, jnp.asarray(mask, bool))
    return losses_module.reduce_weighted_values(values, sample_weight=sample_weight, mask=mask,
                                                reduction=loss.reduction, dtype=loss.dtype)


def weights_of_real_rows(sample_weight, real):
    """Sample weights that give the padding rows no weight (``sample_weight`` may be None)."""
    rows = real.astype(jnp.float32)
    if sample_weight is None:
        return rows
    sample_weight = jnp.asarray(sample_weight)
    return sample_weight * rows.reshape(rows.shape + (1,) * (sample_weight.ndim - 1))


def check_metric(metric) -> None:
    """Raise ``PaddingNotSupported`` unless ``metric`` ignores rows of zero sample weight.

    Every built-in metric does (R2Score's adjusted form aside: it counts rows whatever
    their weight); a user's ``Metric`` subclass may ignore sample weights altogether."""
    builtin = type(metric).__module__.startswith("lamina.metrics")
    if not builtin or (isinstance(metric, R2Score) and metric.num_regressors):
        raise PaddingNotSupported(f"the metric '{metric.name}' may count rows of zero weight")
