"""``lm.Sequential``: a plain stack of layers, each feeding the next."""

from __future__ import annotations

import jax

from lamina.core import state
from lamina.core.symbolic import SymbolicTensor, symbolic_chain
from lamina.layers.core.input_layer import InputLayer, conform_to_input
from lamina.layers.layer import Layer, _adopt, _is_shape
from lamina.layers.masking import get_mask, set_mask
from lamina.models.model import Model
from lamina.saving.object_registry import register_builtin
from lamina.saving.rebuilding import collection_paused
from lamina.saving.serialization import deserialize_object, serialize_object


@register_builtin
class Sequential(Model):
    """Layers applied one after the other; ``add`` appends one.

    With an input shape (``lm.Input`` first, a first layer with ``input_shape``, ``build``, or
    the first call on data) the model also has a symbolic graph, as in Keras: ``inputs``,
    ``outputs``, ``input_shape``, ``output_shape``, and each layer's ``input``/``output``.

    Example:
        >>> import numpy as np, lamina as lm
        >>> model = lm.Sequential([lm.layers.Dense(4, activation="relu"), lm.layers.Dense(1)])
        >>> model.predict(np.ones((3, 2)), verbose=0).shape
        (3, 1)
        >>> [w.name for w in model.weights]
        ['kernel', 'bias', 'kernel', 'bias']
        >>> model.output_shape
        (None, 1)
        >>> features = lm.Sequential([lm.Input((2,)), lm.layers.Dense(4, name="hidden"), lm.layers.Dense(1)])
        >>> lm.Model(features.inputs, features.get_layer("hidden").output).output_shape
        (None, 4)
    """

    _lm_child_keys = "name"  # add() adopts each layer under its name: 'sequential/dense/kernel'
    _lm_model_kind = "sequential"

    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._layers = []
        # The names in _layers, so that add() checks a new name in constant time (a model
        # loaded from a file with thousands of layers adds them one by one).
        self._lm_layer_names = set()
        # The symbolic graph, once the input shape is known (as Keras): the InputLayer it
        # starts from, and the symbolic output of each connected layer, in order.
        self._lm_input_layer = None
        self._lm_graph = []
        for layer in layers or ():
            self.add(layer, rebuild=False)
        if self._layers and self._lm_input_layer is not None:
            self._lm_connect()  # the whole stack at once

    @property
    def layers(self) -> list:
        """The stacked layers in order (a copy: change the stack with ``add`` / ``pop``)."""
        state.note_consulted(self)  # add() and pop() change it without an attribute write
        return list(self._layers)

    @property
    def output_names(self) -> list:
        """``[name of the last layer]`` (``[]`` while empty): a Sequential has one output.

        Keras 3's Sequential has no ``output_names``; here ``compile(loss={name: ...})``
        keyed by the last layer works as on the same Functional model.

        Example:
            >>> import lamina as lm
            >>> lm.Sequential([lm.layers.Dense(4), lm.layers.Dense(1, name="score")]).output_names
            ['score']
        """
        return [self._layers[-1].name] if self._layers else []

    def add(self, layer, rebuild=True) -> None:
        """Append ``layer``; ``lm.Input(...)`` first, or a first layer declaring
        ``input_shape``, builds the model at once (``rebuild=False``: later, when the graph
        is next needed or ``build()`` runs, as in Keras)."""
        if isinstance(layer, SymbolicTensor):
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._lm_input_layer is not None:
                raise ValueError(f"Sequential '{self.name}': an Input can only come first, and only once.")
            self._lm_input_layer = layer
            self._lm_declared_input_shape = layer.batch_shape
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add() takes a lamina Layer, got {type(layer).__name__}.")
        if layer.name in self._lm_layer_names:
            raise ValueError(f"Sequential '{self.name}' already has a layer named {layer.name!r}; names must be unique.")
        _adopt(self, layer, layer.name)  # paths read 'sequential/dense/kernel'
        self._layers.append(layer)
        self._lm_layer_names.add(layer.name)
        state.bump_structure_version(self)  # a list append does not pass through __setattr__
        self.built = False
        if self._lm_input_layer is None:
            declared = self._layers[0].__dict__.get("_lm_declared_input_shape")
            if declared is None:
                return
            self._lm_input_layer = InputLayer(batch_shape=declared, dtype=self._layers[0].dtype)
            self._lm_declared_input_shape = tuple(declared)
        if rebuild:
            self._lm_connect()

    def _lm_connect(self) -> None:
        """Call the layers not yet in the symbolic graph on its last output (this builds them)."""
        x = self._lm_graph[-1] if self._lm_graph else self._lm_input_layer.output
        pending = self._layers[len(self._lm_graph):]
        if len(pending) > 1 and isinstance(x, SymbolicTensor) and all(
                type(layer).__call__ is Layer.__call__ for layer in pending):
            # Many layers at once (a list given to the constructor, a loaded file): layers
            # that state their output are not traced, the others in one abstract evaluation
            # per run instead of one each; the garbage collector, which would pass over every
            # new weight and node again and again, waits until the stack is connected.
            with collection_paused():
                outputs = symbolic_chain(pending, x)
            if outputs:  # the rest (a layer returning a structure) goes one by one: its error
                self._lm_graph.extend(outputs)
                x, pending = outputs[-1], pending[len(outputs):]
        for layer in pending:
            if not isinstance(x, SymbolicTensor):
                raise ValueError(
                    f"Sequential '{self.name}': layer '{self._layers[len(self._lm_graph) - 1].name}' returns "
                    f"{type(x).__name__} of several tensors; every layer of a Sequential model must return "
                    "one tensor (use the Functional API for more)."
                )
            x = layer(x)
            self._lm_graph.append(x)
        self.built = True
        self._lm_build_shape = tuple(self._lm_input_layer.batch_shape)

    def build(self, input_shape=None) -> None:
        """Build every layer for ``input_shape`` (``None`` for unknown axes, e.g. the batch) and
        make the symbolic graph; a structure of several shapes builds without a graph."""
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' cannot be built because it has no layers. "
                             "Call model.add(layer).")
        if input_shape is None and self._lm_input_layer is not None:
            input_shape = self._lm_input_layer.batch_shape
        if hasattr(input_shape, "shape") and hasattr(input_shape, "dtype"):  # one batch: its shape
            input_shape = (None, *input_shape.shape[1:])
        if not _is_shape(input_shape):
            super().build(input_shape)
            return
        shape = tuple(input_shape)
        if self._lm_input_layer is None:
            self._lm_input_layer = InputLayer(batch_shape=shape, dtype=self._layers[0].dtype)
        elif tuple(self._lm_input_layer.batch_shape) != shape:
            raise ValueError(f"Sequential model '{self.name}' has already been configured to use input shape "
                             f"{tuple(self._lm_input_layer.batch_shape)}; it cannot be built with input_shape {shape}.")
        self._lm_connect()

    def _lm_build_from(self, first_input) -> None:
        # The layers build as they run on the first batch; the symbolic graph is made later,
        # only if asked for (inputs, outputs...), so the first call costs no extra tracing.
        if type(self).build is not Sequential.build:  # a subclass's own build() runs, as any layer's
            super()._lm_build_from(first_input)
            return
        self.built = True
        self._lm_build_shape = jax.tree_util.tree_map(lambda a: tuple(a.shape), first_input)

    def _lm_symbolic(self, what):
        """The connected graph, made now from the first batch's shape when the model was built
        from data; ``AttributeError`` (as Keras) while the input shape is unknown."""
        if self._lm_input_layer is None and self.built and self._layers and _is_shape(self._lm_build_shape):
            self._lm_input_layer = InputLayer(batch_shape=(None, *self._lm_build_shape[1:]),
                                              dtype=self._layers[0].dtype)
        if self._lm_input_layer is not None and self._layers and len(self._lm_graph) < len(self._layers):
            self._lm_connect()
        if self._lm_input_layer is None or not self._layers:
            raise AttributeError(
                f"Sequential model '{self.name}' has no defined {what} yet: start it with lm.Input(shape=...), "
                "give its first layer input_shape=..., build it, or call it on data first."
            )
        return self._lm_input_layer.output, self._lm_graph[-1]

    @property
    def inputs(self) -> list:
        """``[model.input]``, once the input shape is known."""
        return [self._lm_symbolic("inputs")[0]]

    @property
    def outputs(self) -> list:
        """``[model.output]``, once the input shape is known."""
        return [self._lm_symbolic("outputs")[1]]

    @property
    def input(self):
        """The symbolic input (a ``KerasTensor``) of the model's graph, once the input shape
        is known (an ``Input`` first, ``input_shape=`` or a first call); else a ValueError."""
        return self._lm_symbolic("input")[0]

    @property
    def output(self):
        """The symbolic output of the last layer, for feature extraction as in Keras."""
        return self._lm_symbolic("output")[1]

    @property
    def input_shape(self):
        """The input shape with the batch axis (``None`` when unknown)."""
        return self._lm_symbolic("input shape")[0].shape

    @property
    def output_shape(self):
        """The output shape with the batch axis."""
        return self._lm_symbolic("output shape")[1].shape

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}' has no layer to pop.")
        layer = self._layers.pop()
        self._lm_layer_names.discard(layer.name)
        if len(self._lm_graph) > len(self._layers):
            node = self._lm_graph.pop().node
            if node in layer._lm_inbound_nodes:
                layer._lm_inbound_nodes.remove(node)
        state.bump_structure_version(self)
        return layer

    def call(self, inputs, training=None, mask=None):
        """Each layer on the previous one's output, masks passed along."""
        if self._lm_input_layer is not None:
            declared = self._lm_input_layer
            conformed = conform_to_input(inputs, declared.batch_shape, declared.input_dtype)
            if conformed is not inputs:  # the mask recorded on the value given stays with it
                mask, inputs = (get_mask(inputs) if mask is None else mask), conformed
        if mask is not None and get_mask(inputs) is None:
            set_mask(inputs, mask)  # the first layer looks its input's mask up there
        x = inputs
        for layer in self._layers:
            x = layer(x)
        return x

    def get_config(self) -> dict:
        """The name and every layer's serialized config, in order."""
        # Names are recorded here too: a custom get_config() often leaves them out, and the
        # weights in a file are keyed by layer name.
        config = {"name": self.name, "trainable": self.trainable,
                  "layers": [{**serialize_object(layer), "name": layer.name} for layer in self._layers]}
        if self._lm_input_layer is not None:  # as Keras's config lists its InputLayer: rebuilt built
            config["input_layer"] = serialize_object(self._lm_input_layer)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new Sequential from ``get_config()``'s dict (registered or ``custom_objects``
        classes only; nothing is imported by name)."""
        layers = []
        for spec in config.get("layers", []):
            spec = dict(spec)
            name = spec.pop("name", None)
            layer = deserialize_object(spec, kind="layer", aliases={}, custom_objects=custom_objects)
            if name is not None:
                layer._lm_name = name
            layers.append(layer)
        if config.get("input_layer") is not None and layers:
            input_layer = deserialize_object(config["input_layer"], kind="layer", aliases={"InputLayer": InputLayer},
                                             custom_objects=custom_objects)
            if not isinstance(input_layer, InputLayer):
                raise ValueError(f"Sequential config {config.get('name')!r}: 'input_layer' must describe an "
                                 f"InputLayer, not a {type(input_layer).__name__}.")
            layers.insert(0, input_layer)
        return cls(layers=layers, name=config.get("name"), trainable=config.get("trainable", True))
