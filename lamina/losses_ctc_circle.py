"""The per-sample forms of Keras 3's ``ctc`` and ``circle`` losses (``lm.losses.ctc`` /
``lm.losses.circle``; the ``CTC`` and ``Circle`` classes wrap them in ``lamina/losses.py``).

- ``ctc``: Connectionist Temporal Classification of integer label sequences against logits,
  by ``optax.ctc_loss``. Keras's convention: ``0`` is the blank and also the padding, so a
  label row holds its labels first and zeros after them (its length is its count of
  non-zero entries); every logit time step counts.
- ``circle``: Sun et al.'s Circle loss of L2-normalised embeddings and their integer labels,
  with Keras's pair weighting. A sample with no positive or no negative pair gets ``0``;
  ``lm.losses.Circle`` leaves those samples out of its average, as Keras does.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from lamina.core.variable import Variable

_LOG_EPSILON = -1e5  # Keras's (and optax's) log of "impossible" in the CTC recursion


def _array(x):
    return jnp.asarray(x.value if isinstance(x, Variable) else x)


def ctc(y_true, y_pred):
    """CTC loss per sample: ``y_true`` integer labels ``(batch, max_label_length)`` padded
    with ``0`` (the blank, never a class), ``y_pred`` unnormalised logits ``(batch, time,
    classes)``. Float logits below float32 are computed in float32, as Keras does.

    Example:
        >>> import jax.numpy as jnp
        >>> logits = jnp.log(jnp.array([[[0.5, 0.5], [0.5, 0.5]]]))
        >>> round(float(ctc(jnp.array([[1, 0]]), logits)[0]), 4)  # paths 1-, -1, 11: 3/4
        0.2877
    """
    y_true, y_pred = _array(y_true), _array(y_pred)
    if y_true.ndim != 2:
        raise ValueError("ctc: targets `y_true` are expected to be a tensor of shape `(batch_size, max_length)` "
                         f"in integer format. Received: y_true.shape={tuple(y_true.shape)}")
    if y_pred.ndim != 3:
        raise ValueError("ctc: logits `y_pred` are expected to be a tensor of shape `(batch_size, max_length, "
                         f"num_classes)`. Received: y_pred.shape={tuple(y_pred.shape)}")
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(f"ctc: `y_true` and `y_pred` must have the same batch size; got y_true.shape="
                         f"{tuple(y_true.shape)} and y_pred.shape={tuple(y_pred.shape)}.")
    if not jnp.issubdtype(y_pred.dtype, jnp.floating):
        y_pred = y_pred.astype("float32")
    y_pred = y_pred.astype(jnp.promote_types(y_pred.dtype, jnp.float32))
    return _ctc(y_true.astype(jnp.int32), y_pred)


@jax.jit
def _ctc(labels, logits):
    # Compiled once per shape: eagerly, the recursion's scan would compile again at every call.
    # Keras takes a row's first (count of non-zero labels) entries as its labels.
    label_length = jnp.sum(labels != 0, axis=-1, keepdims=True)
    label_paddings = (jnp.arange(labels.shape[1])[None, :] >= label_length).astype(logits.dtype)
    logit_paddings = jnp.zeros(logits.shape[:2], logits.dtype)
    return optax.ctc_loss(logits, logit_paddings, labels, label_paddings, blank_id=0, log_epsilon=_LOG_EPSILON)


def circle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True, gamma=80, margin=0.4):
    """Circle loss per sample of L2-normalised embeddings ``y_pred`` ``(batch, dim)`` and
    integer labels ``y_true`` ``(batch,)``, against ``ref_embeddings`` / ``ref_labels``
    (default: the batch itself; ``remove_diagonal`` drops each sample's pair with itself).

    Example:
        >>> import jax.numpy as jnp
        >>> e = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
        >>> [round(v, 3) for v in circle(jnp.array([0, 1, 0]), e, gamma=2.0).tolist()]
        [0.423, 0.0, 0.423]
    """
    y_pred = _array(y_pred)
    if not jnp.issubdtype(y_pred.dtype, jnp.floating):
        y_pred = y_pred.astype("float32")
    labels = _array(y_true).astype(jnp.int32).reshape(-1)
    reference = y_pred if ref_embeddings is None else _array(ref_embeddings).astype(y_pred.dtype)
    ref = labels if ref_labels is None else _array(ref_labels).astype(jnp.int32).reshape(-1)
    if y_pred.ndim != 2 or reference.ndim != 2 or labels.shape[0] != y_pred.shape[0] or ref.shape[0] != reference.shape[0]:
        raise ValueError(
            "circle: expected embeddings of shape (batch, dim) with one integer label each; got "
            f"y_true.shape={tuple(_array(y_true).shape)}, y_pred.shape={tuple(y_pred.shape)}"
            + ("" if ref_embeddings is None else f", ref_embeddings.shape={tuple(reference.shape)}")
            + ("" if ref_labels is None else f", ref_labels.shape={tuple(ref.shape)}") + ".")
    return _circle(labels, y_pred, ref, reference, remove_diagonal=bool(remove_diagonal), gamma=gamma, margin=margin)


@functools.partial(jax.jit, static_argnames=("remove_diagonal",))
def _circle(labels, y_pred, ref, reference, remove_diagonal, gamma, margin):
    distances = jnp.maximum(1 - y_pred @ reference.T, 0.0)  # cosine distances
    positive = labels[:, None] == ref[None, :]
    negative = jnp.logical_not(positive)
    if remove_diagonal:
        positive = positive & ~jnp.eye(labels.shape[0], ref.shape[0], dtype=bool)
    # Each pair weighted by how far it is from its optimum (margin for positives, 1 + margin
    # for negatives), as Keras does.
    pos_weights = jnp.maximum((margin + distances) * positive, 0.0)
    neg_weights = jnp.maximum((1 + margin - distances) * negative, 0.0)
    pos_terms = -gamma * pos_weights * (margin - distances)
    neg_terms = gamma * neg_weights * ((1 - margin) - distances)
    p_loss = jax.nn.logsumexp(jnp.where(positive, pos_terms, -jnp.inf), axis=1)
    n_loss = jax.nn.logsumexp(jnp.where(negative, neg_terms, -jnp.inf), axis=1)
    return jax.nn.softplus(p_loss + n_loss)


__all__ = ["circle", "ctc"]
