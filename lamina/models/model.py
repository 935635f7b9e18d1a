"""``lm.Model``: a ``Layer`` that can be compiled, trained, evaluated and saved."""

from __future__ import annotations

import inspect
import json

import jax

from lamina.core.abstract import abstract_eval
from lamina.core.symbolic import contains_symbolic
from lamina.export import export_model
from lamina.layers.core import quantized
from lamina.layers.layer import Layer
from lamina.models import state_tree
from lamina.saving.model_file import save_model
from lamina.saving.serialization import revive_nested, serialize
from lamina.saving.weights import load_weights
from lamina.saving.weights_api import save_weights
from lamina.trainers.trainer import Trainer


class Model(Trainer, Layer):
    """A layer with the training API: subclass it with ``__init__`` and ``call``.

    Example:
        >>> import numpy as np, lamina as lm
        >>> class MLP(lm.Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = lm.layers.Dense(8, activation="relu")
        ...         self.out = lm.layers.Dense(1)
        ...     def call(self, x):
        ...         return self.out(self.hidden(x))
        >>> model = MLP()
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> history = model.fit(np.ones((64, 3)), np.ones((64, 1)), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
    """

    _lm_model_kind = "subclassed"  # Sequential and Functional say theirs (Layer._lm_model_kind)
    # The Functional API's class, a subclass defined in lamina.models.functional, which sets
    # this when imported (lamina.models imports it): Model(inputs, outputs) builds one.
    _lm_functional = None

    def __new__(cls, *args, **kwargs):
        functional = Model._lm_functional
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            # lm.Model(inputs, outputs): the Functional API. Python then runs
            # Functional.__init__ on the object, since it is a Model.
            return Layer.__new__(functional, *args, **kwargs)
        if not issubclass(cls, functional) and _functional_arguments(args, kwargs):
            # CustomModel(inputs, outputs) with CustomModel(lm.Model): an instance of a class
            # deriving from both CustomModel (its overrides first) and Functional (the graph).
            return Layer.__new__(functional._lm_subclass_for(cls), *args, **kwargs)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, *args, **kwargs):
        if _functional_arguments(args, kwargs):
            # A subclass whose __init__ makes a graph and calls
            # super().__init__(inputs=..., outputs=...): it becomes Functional here.
            functional = Model._lm_functional
            if not isinstance(self, functional):
                self.__class__ = functional._lm_subclass_for(type(self))
            functional.__init__(self, *args, **kwargs)
            return
        Layer.__init__(self, *args, **kwargs)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild a model from ``get_config()``; a Functional config (also one saved from a
        subclass built as ``CustomModel(inputs, outputs)``) is rebuilt as a graph, with the
        classes of its layers found through ``custom_objects`` and the registry.

        Example:
            >>> import lamina as lm
            >>> inputs = lm.Input(shape=(3,))
            >>> model = lm.Model(inputs, lm.layers.Dense(2, name="out")(inputs))
            >>> copy = lm.Model.from_config(model.get_config())
            >>> type(copy).__name__, copy.get_layer("out") is model.get_layer("out"), copy.output_shape
            ('Functional', False, (None, 2))
        """
        functional = Model._lm_functional
        if functional._lm_is_config(config) and _revivable_as_functional(cls):
            return functional.from_config.__func__(cls, config, custom_objects=custom_objects)
        return super().from_config(revive_nested(config, custom_objects))

    @property
    def layers(self) -> list:
        """The layers directly held by this model, in attribute order (a Functional model:
        every layer of its graph, inputs included; a Sequential: its stack)."""
        self._lm_adopt_children()  # one appended to a list attribute gets its path now
        return self._lm_children()[1]

    def get_layer(self, name=None, index=None):
        """A layer of ``layers`` by ``name`` or by position ``index`` (not both, as Keras)."""
        if index is not None and name is not None:
            raise ValueError(f"Provide only a layer name or a layer index. Received: index={index}, name={name}.")
        layers = self.layers
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model '{self.name}' only has "
                                 f"{len(layers)} layers.")
            return layers[index]
        if name is None:
            raise ValueError("Provide either a layer name or layer index at get_layer().")
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name!r} in model '{self.name}'. Existing layers are: "
                         f"{[layer.name for layer in layers]}.")

    def to_json(self, **kwargs) -> str:
        """The architecture (class and config, no weights) as JSON text; ``kwargs`` go to
        ``json.dumps``. ``lm.models.model_from_json`` rebuilds the model from it.

        Example:
            >>> import json, lamina as lm
            >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2, name="out")])
            >>> config = json.loads(model.to_json())
            >>> config["class_name"], [layer["name"] for layer in config["config"]["layers"]]
            ('Sequential', ['out'])
        """
        return json.dumps(serialize(self), **kwargs)

    def quantize(self, mode=None, config=None, filters=None, **kwargs) -> None:
        """Quantize the weights of every ``Dense``, ``EinsumDense`` and ``Embedding`` in the
        built model, in place: ``"int8"`` or ``"int4"``, or a ``lm.quantizers`` config;
        ``filters`` (a regex on layer names, a list of them, or a predicate) picks the layers.
        Other layers are left as they are (with a warning), as in Keras; docs/quantization.md.

        Example:
            >>> import numpy as np, lamina as lm
            >>> model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3)])
            >>> model.quantize("int8")
            >>> model.layers[0].dtype_policy, str(model.layers[0].kernel.dtype)
            (<QuantizedDTypePolicy "int8_from_float32">, 'int8')
        """
        type_check = kwargs.pop("type_check", True)
        if kwargs:
            raise ValueError(f"Model '{self.name}': quantize() got unexpected keyword arguments {sorted(kwargs)}.")
        quantized.quantize_model(self, mode, config, filters, type_check)

    # -- saving ----------------------------------------------------------------------------
    def save(self, filepath, overwrite: bool = True) -> None:
        """Write the whole model (config, weights, optimizer state, compile arguments) to one
        ``.lamina`` file, atomically; ``lm.load_model(filepath)`` reads it back."""
        save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite: bool = True, max_shard_size=None) -> None:
        """Write every variable (and the optimizer state) by path to a ``.safetensors`` file
        (or Keras's ``.weights.h5``); Keras's arguments, as ``lm.saving.save_weights``."""
        save_weights(self, filepath, overwrite=overwrite, max_shard_size=max_shard_size)

    def load_weights(self, filepath, skip_mismatch: bool = False) -> None:
        """Load a ``.safetensors`` (from ``save_weights``) or ``.lamina`` file into this built
        model. Every key, shape and dtype is checked first; all mismatches are reported in one
        ``ValueError`` and nothing changes, unless ``skip_mismatch=True``."""
        load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def get_state_tree(self, value_format="backend_tensor") -> dict:
        """Every variable as nested dicts, structured as Keras 3 structures them:
        ``{"trainable_variables", "non_trainable_variables", "optimizer_variables",
        "metrics_variables"}``, each nested by the variable's Keras path (layer names, then the
        variable's name). Leaves are JAX arrays, or NumPy arrays with
        ``value_format="numpy_array"``. ``set_state_tree`` takes it (or a part of it) back.

        Example:
            >>> import lamina as lm
            >>> model = lm.Sequential([lm.Input((3,)), lm.layers.Dense(2, name="out")], name="seq")
            >>> tree = model.get_state_tree("numpy_array")
            >>> {name: w.shape for name, w in tree["trainable_variables"]["seq"]["out"].items()}
            {'kernel': (3, 2), 'bias': (2,)}
        """
        return state_tree.get_state_tree(self, value_format)

    def set_state_tree(self, state_tree_dict) -> None:
        """Assign the values of a state tree (``get_state_tree``'s structure; groups and
        variables may be left out). Unknown groups or paths and wrong shapes raise, naming
        them, before any variable changes."""
        state_tree.set_state_tree(self, state_tree_dict)

    @property
    def run_eagerly(self) -> bool:
        """Whether ``fit``/``evaluate``/``predict`` run their steps eagerly (uncompiled, for
        debugging). ``compile(run_eagerly=...)`` sets it; setting it afterwards takes effect at
        the next step.

        Example:
            >>> import lamina as lm
            >>> model = lm.Sequential([lm.Input((2,)), lm.layers.Dense(1)])
            >>> model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
            >>> before = model.run_eagerly
            >>> model.run_eagerly = False
            >>> before, model.run_eagerly, model.jit_compile
            (True, False, True)
        """
        compile_args = self.__dict__.get("_lm_compile_args")
        override = self.__dict__.get("_lm_run_eagerly")
        if override is not None and override[0] is compile_args:  # set since the last compile()
            return override[1]
        return bool((compile_args or {}).get("run_eagerly", False))

    @run_eagerly.setter
    def run_eagerly(self, value) -> None:
        compile_args = self.__dict__.get("_lm_compile_args")
        self._lm_run_eagerly = (compile_args, bool(value))
        self.jit_compile = bool((compile_args or {}).get("jit_compile", True)) and not value
        self._lm_step_functions = {}  # the cached steps are compiled (or not) for the old setting

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs) -> None:
        """Export the inference pass (``training=False``, current weights, free batch axis)
        for serving without lamina: ``"tf_saved_model"`` (default, as Keras; a folder for
        ``tf.saved_model.load``, endpoint ``serve``), ``"onnx"`` (for onnxruntime) or
        ``"stablehlo"`` (``lm.export.load_stablehlo``). Keras's arguments; see
        ``lm.export.export_model``."""
        export_model(self, filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None) -> None:
        """Print the layers with output shapes and parameter counts, and the totals.

        ``print_fn`` receives each line (default ``print``, or the ``"lamina"`` logger after
        ``lm.utils.disable_interactive_logging()``); ``expand_nested`` lists the layers
        of nested models under them. Parameter totals count ``trainable_weights`` and
        ``non_trainable_weights`` (as Keras does).
        """
        from lamina.models.summary import summary_lines  # loads rich: only summary() needs it
        from lamina.utils.logging_control import is_interactive_logging_enabled, print_msg

        if print_fn is None:
            print_fn = print if is_interactive_logging_enabled() else print_msg
        for line in summary_lines(self, line_length=line_length, expand_nested=expand_nested,
                                  show_trainable=show_trainable):
            print_fn(line)

    def build(self, input_shape) -> None:
        """Create every weight from ``input_shape`` (``None`` for the batch axis) without data.
        An array in place of a shape stands for its shape and dtype (Keras's JAX guides call
        ``model.build(one_batch)``)."""
        def spec(shape):
            if _is_array(shape):
                return jax.ShapeDtypeStruct(tuple(shape.shape), shape.dtype)
            return jax.ShapeDtypeStruct(tuple(1 if d is None else d for d in shape), self._lm_dtype)

        specs = jax.tree_util.tree_map(spec, input_shape, is_leaf=lambda s: isinstance(s, tuple))
        # Marked built first: a subclass's build() that ends with super().build(input_shape), as
        # Keras's guides write it, must not be called again by the traced call below.
        was_built, self.built = self.built, True
        try:
            abstract_eval(lambda x: self(x), specs)  # whatever the call writes (counters, statistics) is dropped
        except BaseException:
            self.built = was_built
            raise

    def _lm_build_from(self, first_input) -> None:
        # A model without its own build() creates its weights as its layers run for the first
        # time; tracing it once more just to build would double the first call's cost.
        if type(self).build is Model.build:
            self.built = True
            self._lm_build_shape = jax.tree_util.tree_map(lambda a: tuple(a.shape), first_input)
            return
        super()._lm_build_from(first_input)


def _is_array(value) -> bool:
    """An array (NumPy, JAX, anything with a shape and a dtype), not a shape tuple."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, tuple)


def _functional_arguments(args, kwargs) -> bool:
    """Whether a Model subclass is being built as ``Cls(inputs, outputs)`` (Keras's rule,
    plus: the inputs must be symbolic, so a subclass's own two-argument ``__init__`` is
    never mistaken for it)."""
    if len(args) >= 2:
        inputs = args[0]
    elif len(args) == 1 and "outputs" in kwargs:
        inputs = args[0]
    elif "inputs" in kwargs and "outputs" in kwargs:
        inputs = kwargs["inputs"]
    else:
        return False
    return contains_symbolic(inputs)


def _revivable_as_functional(cls) -> bool:
    """As Keras: a class whose ``__init__`` is lamina's, takes ``(*args, **kwargs)``, or starts
    with ``inputs, outputs`` can be rebuilt from a Functional config."""
    init = cls.__init__
    if init in (Model.__init__, Model._lm_functional.__init__, Layer.__init__):
        return True
    params = list(inspect.signature(init).parameters.values())[1:]
    kinds = {p.kind for p in params}
    if inspect.Parameter.VAR_POSITIONAL in kinds and inspect.Parameter.VAR_KEYWORD in kinds:
        return True
    return [p.name for p in params[:2]] == ["inputs", "outputs"]
