"""``Bidirectional`` and ``TimeDistributed``: wrappers around another layer."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lamina.layers.core.wrapper import Wrapper
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin
from lamina.saving.serialization import deserialize_object, serialize_object

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _clone(layer, **changes):
    """A fresh layer of the same class and config, with ``changes`` applied to the config."""
    config = layer.get_config()
    config.update(changes)
    return type(layer).from_config(config)


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


@register_builtin
class Bidirectional(Layer):
    """Runs an RNN layer forwards and a copy of it backwards and merges the two, as
    ``keras.layers.Bidirectional``.

    ``layer`` is only used as a template: its config makes ``forward_layer`` (named
    ``forward_<name>``) and, unless ``backward_layer`` is given, ``backward_layer`` (named
    ``backward_<name>``, with ``go_backwards`` flipped). Weights are the forward layer's, then
    the backward layer's. ``merge_mode`` is ``"concat"``, ``"sum"``, ``"mul"``, ``"ave"`` or
    ``None`` (a tuple of both outputs). With ``return_sequences`` the backward outputs are
    flipped back into time order, and masked timesteps give zeros (Keras forces
    ``zero_output_for_mask`` on both layers). ``initial_state`` is the forward states followed
    by the backward states; ``return_state=True`` appends the forward then the backward states.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import Bidirectional, LSTM
        >>> layer = Bidirectional(LSTM(4, return_sequences=True, name="encoder"))
        >>> layer(jnp.ones((2, 5, 3))).shape
        (2, 5, 8)
        >>> layer.forward_layer.name, layer.backward_layer.name
        ('forward_encoder', 'backward_encoder')
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Bidirectional: `layer` must be a lamina Layer; got {layer!r}.")
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError(f"Bidirectional: `backward_layer` must be a lamina Layer; got {backward_layer!r}.")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {_MERGE_MODES}; got {merge_mode!r}.")
        for attribute in ("go_backwards", "return_sequences", "return_state", "stateful"):
            if not hasattr(layer, attribute):
                raise ValueError(f"Bidirectional: `layer` must be a recurrent layer (no `{attribute}` on {layer!r}).")
        super().__init__(**kwargs)
        self.forward_layer = _clone(layer, name=f"forward_{_strip(layer.name, 'forward_')}")
        if backward_layer is None:
            backward_layer = _clone(layer, name=f"backward_{_strip(layer.name, 'backward_')}",
                                    go_backwards=not layer.go_backwards)
        self.backward_layer = backward_layer
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError(
                "Bidirectional: the forward and backward layers must have different `go_backwards`; "
                f"both have {self.forward_layer.go_backwards}."
            )
        for attribute in ("stateful", "return_sequences", "return_state"):
            forward, backward = getattr(self.forward_layer, attribute), getattr(self.backward_layer, attribute)
            if forward != backward:
                raise ValueError(
                    f"Bidirectional: the forward and backward layers must have the same `{attribute}`; "
                    f"got {forward} and {backward}."
                )
        for sub in (self.forward_layer, self.backward_layer):
            if hasattr(sub, "zero_output_for_mask"):
                sub.zero_output_for_mask = sub.return_sequences
        if weights is not None:
            raise NotImplementedError("Bidirectional: pass weights with set_weights() after building.")
        self.merge_mode = merge_mode
        self.stateful = self.forward_layer.stateful
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.supports_masking = True

    def build(self, input_shape):
        for sub in (self.forward_layer, self.backward_layer):
            if not sub.built:
                sub.build_from_shape(input_shape)

    def _merge(self, y, y_rev):
        if self.merge_mode == "concat":
            return jnp.concatenate([y, y_rev], axis=-1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / 2
        if self.merge_mode == "mul":
            return y * y_rev
        return (y, y_rev)

    def call(self, inputs, initial_state=None, mask=None, training=None):
        forward_state = backward_state = None
        if initial_state is not None:
            initial_state = list(initial_state)
            half = len(initial_state) // 2
            forward_state, backward_state = initial_state[:half], initial_state[half:]
        y = self.forward_layer(inputs, initial_state=forward_state, mask=mask, training=training)
        y_rev = self.backward_layer(inputs, initial_state=backward_state, mask=mask, training=training)
        states = ()
        if self.return_state:
            states = tuple(y[1:]) + tuple(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = jnp.flip(y_rev, axis=1)
        output = self._merge(y, y_rev)
        if self.return_state:
            return (*output, *states) if self.merge_mode is None else (output, *states)
        return output

    def compute_mask(self, inputs, mask=None):
        """As Keras: the input's mask for sequence outputs (each of the two with
        ``merge_mode=None``), else none; ``None`` for each state with ``return_state``."""
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        masks = [output_mask] * (2 if self.merge_mode is None else 1)
        if self.return_state:
            masks += [None] * (len(self.forward_layer.state_size) + len(self.backward_layer.state_size))
        return masks if len(masks) > 1 else masks[0]

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        output_shape = self.forward_layer.compute_output_shape(input_shape)
        state_shapes = ()
        if self.return_state:
            output_shape, state_shapes = output_shape[0], tuple(output_shape[1:])
        if self.merge_mode == "concat":
            output_shape = (*output_shape[:-1], None if output_shape[-1] is None else 2 * output_shape[-1])
        outputs = (tuple(output_shape), tuple(output_shape)) if self.merge_mode is None else (tuple(output_shape),)
        if self.return_state:
            return outputs + state_shapes + state_shapes
        return outputs if self.merge_mode is None else outputs[0]

    def reset_state(self):
        if not self.stateful:
            raise AttributeError(f"Bidirectional '{self.name}': reset_state() needs a stateful layer.")
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    def get_config(self):
        return {
            **super().get_config(),
            "merge_mode": self.merge_mode,
            "layer": serialize_object(self.forward_layer),
            "backward_layer": serialize_object(self.backward_layer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = deserialize_object(config["layer"], kind="layer", aliases={}, custom_objects=custom_objects)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize_object(
                config["backward_layer"], kind="layer", aliases={}, custom_objects=custom_objects)
        return cls(**config)


@register_builtin
class TimeDistributed(Wrapper):
    """Applies ``layer`` to every timestep (axis 1) of the input, as ``keras.layers.TimeDistributed``.

    The batch and time axes are merged, ``layer`` runs once on ``(batch * time, ...)``, and
    the output is split back to ``(batch, time, ...)``. A mask ``(batch, time, ...)`` reaches
    ``layer`` reshaped the same way. Weights are ``layer``'s. Unlike Keras (one call per
    timestep), a layer whose result depends on the whole batch (``BatchNormalization`` in
    training) sees all timesteps at once.

    Example:
        >>> import jax.numpy as jnp, lamina as lm
        >>> from lamina.layers.rnn import TimeDistributed
        >>> layer = TimeDistributed(lm.layers.Dense(3))
        >>> layer(jnp.ones((2, 5, 4))).shape
        (2, 5, 3)
    """

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.supports_masking = True

    @staticmethod
    def _child_shape(input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError(
                f"TimeDistributed needs an input of rank >= 3 (batch, time, ...); got shape {input_shape}."
            )
        return (input_shape[0], *input_shape[2:])

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build_from_shape(self._child_shape(input_shape))

    def compute_output_shape(self, input_shape):
        child = self.layer.compute_output_shape(self._child_shape(input_shape))
        return (child[0], input_shape[1], *child[1:])

    def call(self, inputs, training=None, mask=None):
        batch, steps = inputs.shape[0], inputs.shape[1]
        self._child_shape(inputs.shape)
        merged = inputs.reshape(batch * steps, *inputs.shape[2:])
        kwargs = {"training": training}
        if mask is not None:
            mask = jnp.asarray(mask)
            if mask.shape[:2] != (batch, steps):
                raise ValueError(
                    f"TimeDistributed '{self.name}': the mask has shape {mask.shape}; its first two axes "
                    f"must be the input's (batch, time) = {(batch, steps)}."
                )
            kwargs["mask"] = mask.reshape(batch * steps, *mask.shape[2:])
        outputs = self.layer(merged, **kwargs)
        return jax.tree_util.tree_map(lambda y: y.reshape(batch, steps, *y.shape[1:]), outputs)
