"""``FeatureSpace``: Keras 3's one-stop preprocessing of structured data (``keras.utils.FeatureSpace``),
built on lamina's preprocessing layers (``Normalization``, ``Rescaling``, ``Discretization``,
``IntegerLookup``, ``StringLookup``, ``Hashing``, ``HashedCrossing``, ``CategoryEncoding``).

Each feature's values go through its preprocessor (on the host: lookups and hashes are NumPy
work), crosses hash the preprocessed values of their features together, ``"one_hot"`` outputs
are one-hot encoded, and ``output_mode="concat"`` concatenates everything into one float32
vector per sample, in Keras's order (the features by sorted name, then the crosses by sorted
name), so a model trained on Keras's encodings takes lamina's.

What differs from Keras: a FeatureSpace runs on the data, before the model (JAX arrays cannot
hold strings), so ``get_encoded_features()`` returns ``lm.Input`` s standing for the encoded
features, the inputs of the model that the encoded data feeds, rather than tensors computed
from ``get_inputs()``. ``save`` writes a ``.lamina`` model file that ``lm.load_model`` reads.
"""

from __future__ import annotations

import numpy as np

from lamina.core.naming import unique_name
from lamina.layers.layer import Layer
from lamina.saving.object_registry import register_builtin

__all__ = ["Cross", "Feature", "FeatureSpace"]

_ADAPT_BATCH = 32  # Keras batches unbatched data by 32 for adapt


def _layers():
    from lamina import layers  # lamina.layers imports lamina.utils: resolved at use

    return layers


def _preprocessed(kind, name, dtype, output_mode, layer_class, **arguments):
    """A ``Feature`` whose preprocessor is ``lm.layers.<layer_class>(**arguments)``, named
    ``<name>_preprocessor`` as Keras names it (``name`` defaults to a fresh ``kind`` name)."""
    name = name or unique_name(kind)
    preprocessor = getattr(_layers(), layer_class)(name=f"{name}_preprocessor", **arguments)
    return Feature(dtype, preprocessor, output_mode)


@register_builtin
class Cross:
    """A feature cross of a ``FeatureSpace``: ``feature_names`` hashed together into
    ``crossing_dim`` bins (``FeatureSpace.cross``)."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if output_mode not in {"int", "one_hot"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of {'int', 'one_hot'}. "
                             f"Received: output_mode={output_mode}")
        self.feature_names = tuple(feature_names)
        self.crossing_dim = crossing_dim
        self.output_mode = output_mode

    @property
    def name(self):
        return "_X_".join(self.feature_names)

    def get_config(self):
        return {"feature_names": list(self.feature_names), "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@register_builtin
class Feature:
    """A feature of a ``FeatureSpace``: its raw ``dtype``, the ``preprocessor`` layer and the
    ``output_mode`` (``"int"``, ``"one_hot"`` or ``"float"``)."""

    def __init__(self, dtype, preprocessor, output_mode):
        if output_mode not in {"int", "one_hot", "float"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of {'int', 'one_hot', "
                             f"'float'}}. Received: output_mode={output_mode}")
        self.dtype = dtype
        if isinstance(preprocessor, dict):
            from lamina.saving import deserialize_keras_object

            preprocessor = deserialize_keras_object(preprocessor)
        self.preprocessor = preprocessor
        self.output_mode = output_mode

    def get_config(self):
        from lamina.saving import serialize_keras_object

        return {"dtype": self.dtype, "preprocessor": serialize_keras_object(self.preprocessor),
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@register_builtin
class FeatureSpace(Layer):
    """Preprocess and encode a dict of structured features (Keras 3's ``keras.utils.FeatureSpace``).

    Args:
        features: ``{name: type}``; a type is a string (``"float"``, ``"float_normalized"``,
            ``"float_rescaled"``, ``"float_discretized"``, ``"integer_categorical"``,
            ``"string_categorical"``, ``"integer_hashed"``, ``"string_hashed"``: default
            arguments) or a ``FeatureSpace.<type>(...)`` / ``FeatureSpace.feature(...)``.
        output_mode: ``"concat"`` (one float32 vector per sample) or ``"dict"`` (each encoded
            feature and cross under its name).
        crosses: feature crosses, tuples of feature names or ``FeatureSpace.cross(...)``.
        crossing_dim: bins of a cross given as a tuple (default 32).
        hashing_dim: bins of ``"integer_hashed"`` / ``"string_hashed"`` (default 32).
        num_discretization_bins: bins of ``"float_discretized"`` (default 32).

    ``adapt(data)`` learns vocabularies, means and variances and bin boundaries from
    ``data``: a dict of arrays or lists, a pandas ``DataFrame``, a ``tf.data.Dataset`` of
    dicts, or an iterable of dict batches. Calling the FeatureSpace on a dict of values (a
    batch, or one sample of scalars) returns the encoding (JAX arrays, as Keras on JAX);
    inside ``tf.data``'s ``dataset.map`` it runs on the host through ``tf.numpy_function``.
    ``preprocessors`` and ``crossers`` hold the layers, by feature and cross name.

    Example:
        >>> import lamina as lm
        >>> data = {"price": [1.0, 2.0, 3.0, 4.0], "color": ["red", "blue", "red", "red"]}
        >>> space = lm.utils.FeatureSpace(
        ...     {"price": "float_normalized", "color": "string_categorical"})
        >>> space.adapt(data)
        >>> encoded = space(data)
        >>> encoded.shape, [round(float(v), 3) for v in encoded[0]]  # color [OOV, red, blue], price
        ((4, 4), [0.0, 1.0, 0.0, -1.342])
        >>> space.get_encoded_features().shape
        (None, 4)
    """

    # A FeatureSpace is saved and loaded as a model file is (lm.load_model gives it back);
    # no "sequential"/"functional" path applies to it.
    _lm_model_kind = "feature_space"

    # -- feature types (Keras's class methods) --------------------------------------------------

    @classmethod
    def cross(cls, feature_names, crossing_dim, output_mode="one_hot"):
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype, preprocessor, output_mode):
        return Feature(dtype, preprocessor, output_mode)

    @classmethod
    def float(cls, name=None):
        return _preprocessed("float", name, "float32", "float", "Identity")

    @classmethod
    def float_rescaled(cls, scale=1.0, offset=0.0, name=None):
        return _preprocessed("float_rescaled", name, "float32", "float", "Rescaling", scale=scale, offset=offset)

    @classmethod
    def float_normalized(cls, name=None):
        return _preprocessed("float_normalized", name, "float32", "float", "Normalization", axis=-1)

    @classmethod
    def float_discretized(cls, num_bins, bin_boundaries=None, output_mode="one_hot", name=None):
        return _preprocessed("float_discretized", name, "float32", output_mode, "Discretization",
                             num_bins=None if bin_boundaries is not None else num_bins, bin_boundaries=bin_boundaries)

    @classmethod
    def integer_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot", name=None):
        return _preprocessed("integer_categorical", name, "int32", output_mode, "IntegerLookup",
                             max_tokens=max_tokens, num_oov_indices=num_oov_indices)

    @classmethod
    def string_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot", name=None):
        return _preprocessed("string_categorical", name, "string", output_mode, "StringLookup",
                             max_tokens=max_tokens, num_oov_indices=num_oov_indices)

    @classmethod
    def string_hashed(cls, num_bins, output_mode="one_hot", name=None):
        return _preprocessed("string_hashed", name, "string", output_mode, "Hashing", num_bins=num_bins)

    @classmethod
    def integer_hashed(cls, num_bins, output_mode="one_hot", name=None):
        return _preprocessed("integer_hashed", name, "int32", output_mode, "Hashing", num_bins=num_bins)

    # -- construction -----------------------------------------------------------------------------

    def __init__(self, features, output_mode="concat", crosses=None, crossing_dim=32, hashing_dim=32,
                 num_discretization_bins=32, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        if not features:
            raise ValueError("The `features` argument cannot be None or empty.")
        self.crossing_dim = crossing_dim
        self.hashing_dim = hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.features = {name: self._standardize_feature(name, value) for name, value in features.items()}
        self.crosses = []
        for cross in crosses or ():
            if isinstance(cross, dict):
                from lamina.saving import deserialize_keras_object

                cross = deserialize_keras_object(cross)
            if not isinstance(cross, Cross):
                if not crossing_dim:
                    raise ValueError("When specifying `crosses`, the argument `crossing_dim` (dimensionality of "
                                     "the crossing space) should be specified as well.")
                cross = Cross(cross, crossing_dim=crossing_dim)
            unknown = [key for key in cross.feature_names if key not in self.features]
            if unknown:
                raise ValueError("All features referenced in the `crosses` argument should be present in the "
                                 f"`features` dict. Received unknown features: {list(cross.feature_names)}")
            self.crosses.append(cross)
        self.crosses_by_name = {cross.name: cross for cross in self.crosses}
        if output_mode not in {"dict", "concat"}:
            raise ValueError("Invalid value for argument `output_mode`. Expected one of {'dict', 'concat'}. "
                             f"Received: output_mode={output_mode}")
        self.output_mode = output_mode
        self.preprocessors = {name: feature.preprocessor for name, feature in self.features.items()}
        self.crossers = {cross.name: _layers().HashedCrossing(cross.crossing_dim, name=cross.name)
                         for cross in self.crosses}
        self._lm_encoders = None   # name -> CategoryEncoding of the one-hot outputs, once built
        self._lm_inputs = None
        self._lm_encoded = None
        self._lm_adapted = False

    def _standardize_feature(self, name, feature):
        if isinstance(feature, Feature):
            return feature
        if isinstance(feature, dict):
            from lamina.saving import deserialize_keras_object

            return deserialize_keras_object(feature)
        makers = {
            "float": lambda: self.float(name=name),
            "float_normalized": lambda: self.float_normalized(name=name),
            "float_rescaled": lambda: self.float_rescaled(name=name),
            "float_discretized": lambda: self.float_discretized(name=name, num_bins=self.num_discretization_bins),
            "integer_categorical": lambda: self.integer_categorical(name=name),
            "string_categorical": lambda: self.string_categorical(name=name),
            "integer_hashed": lambda: self.integer_hashed(self.hashing_dim, name=name),
            "string_hashed": lambda: self.string_hashed(self.hashing_dim, name=name),
        }
        if not isinstance(feature, str) or feature not in makers:
            raise ValueError(f"Invalid feature type: {feature}")
        return makers[feature]()

    # -- adapt --------------------------------------------------------------------------------

    def _adaptable(self):
        layers = _layers()
        names = []
        for name, preprocessor in self.preprocessors.items():
            if isinstance(preprocessor, layers.Normalization) and preprocessor.input_mean is not None:
                continue  # given mean and variance
            if getattr(preprocessor, "_has_input_vocabulary", False):
                continue  # given vocabulary
            if isinstance(preprocessor, layers.Discretization) and preprocessor.num_bins is None:
                continue  # given bin boundaries
            if hasattr(preprocessor, "adapt"):
                names.append(name)
        return names

    def adapt(self, dataset):
        """Learn each adaptable preprocessor's state (vocabularies, mean and variance, bin
        boundaries) from ``dataset``: a dict of arrays or lists, a pandas ``DataFrame``, a
        ``tf.data.Dataset`` of dicts (batched or not), or an iterable of dict batches (``(x, y)``
        batches use ``x``). Unbatched data is read in batches of 32, as Keras does."""
        names = self._adaptable()
        columns = {name: [] for name in names}
        for batch in _dict_batches(dataset, self.name):
            missing = [name for name in names if name not in batch]
            if missing:
                raise ValueError(f"FeatureSpace '{self.name}': adapt() data has no feature(s) {missing}; "
                                 f"its keys are {sorted(batch)}.")
            for name in names:
                columns[name].append(_column(batch[name], self.features[name].dtype))
        for name in names:
            if not columns[name]:
                raise ValueError(f"FeatureSpace '{self.name}': adapt() received no data.")
            self.preprocessors[name].adapt(iter(columns[name]))
        # A new vocabulary may change one-hot widths: encoders and encoded inputs are remade.
        self._lm_encoders = self._lm_encoded = None
        self._finish_build()

    def _finish_build(self):
        self._lm_adapted = True
        self.build_from_shape({name: (None, 1) for name in self.features})
        encoders = self._encoders()
        if self.output_mode == "concat":  # Keras refuses at adapt too
            features, crosses = self._names()
            self._check_concatenable({
                name: (None, "float32" if name in encoders or self._spec(name).output_mode == "float" else "int32")
                for name in features + crosses})

    def build(self, input_shape):
        # Called when adapted, and when a saved FeatureSpace is rebuilt (its Normalization
        # layers need their variables before the file's weights are loaded into them).
        for name, preprocessor in self.preprocessors.items():
            if isinstance(preprocessor, _layers().Normalization) and not preprocessor.built:
                preprocessor.build_from_shape(tuple(input_shape.get(name, (None, 1))))
        self._lm_adapted = True

    def _check_if_adapted(self):
        if not self._lm_adapted:
            if self._adaptable():
                raise ValueError("You need to call `.adapt(dataset)` on the FeatureSpace before you can start "
                                 "using it.")
            self._finish_build()

    # -- the encoders and the symbolic views --------------------------------------------------

    def _names(self):
        return sorted(self.features), sorted(self.crossers)

    def _spec(self, name):
        return self.features[name] if name in self.features else self.crosses_by_name[name]

    def _layer(self, name):
        return self.preprocessors.get(name) or self.crossers[name]

    def _cardinality(self, name):
        layers = _layers()
        layer = self._layer(name)
        if isinstance(layer, (layers.IntegerLookup, layers.StringLookup)):
            return layer.vocabulary_size()
        if isinstance(layer, layers.CategoryEncoding):
            return layer.num_tokens
        if isinstance(layer, layers.Discretization):
            return len(layer.bin_boundaries) + 1 if layer.bin_boundaries is not None else layer.num_bins
        if isinstance(layer, (layers.HashedCrossing, layers.Hashing)):
            return layer.num_bins
        raise ValueError(f"Feature '{name}' has `output_mode='one_hot'`. However it isn't a standard feature and "
                         "the dimensionality of its output space is not known, thus it cannot be one-hot encoded. "
                         "Try using `output_mode='int'`.")

    def _encoders(self):
        if self._lm_encoders is None:
            features, crosses = self._names()
            self._lm_encoders = {
                name: _layers().CategoryEncoding(num_tokens=self._cardinality(name), output_mode="multi_hot")
                for name in features + crosses if self._spec(name).output_mode == "one_hot"}
        return self._lm_encoders

    def _width_and_dtype(self, name):
        """The last axis and dtype of the encoded feature ``name`` (one sample is ``(1,)``)."""
        if name in self._encoders():
            return self._encoders()[name].num_tokens, "float32"
        spec = self._spec(name)
        if spec.output_mode == "int":
            return 1, "int32"
        if isinstance(spec.preprocessor, (_layers().Normalization, _layers().Rescaling, _layers().Identity)):
            return 1, "float32"
        try:
            shape = spec.preprocessor.compute_output_shape((None, 1))
        except Exception as error:
            raise ValueError(f"FeatureSpace '{self.name}': the width of feature '{name}' ("
                             f"{type(spec.preprocessor).__name__}) is not known before data passes "
                             f"through it ({error}).") from error
        return shape[-1], "float32"

    def get_inputs(self):
        """``{name: lm.Input(shape=(1,), dtype=...)}`` of the raw features (Keras's
        ``get_inputs``). lamina's inputs are numbers: a string feature raises a ``TypeError``;
        feed the FeatureSpace's output to the model instead (``get_encoded_features``)."""
        self._check_if_adapted()
        if self._lm_inputs is None:
            strings = [name for name, feature in self.features.items() if feature.dtype == "string"]
            if strings:
                raise TypeError(
                    f"FeatureSpace '{self.name}': features {strings} are strings, and lamina model inputs are "
                    "numbers (JAX arrays cannot hold strings). Apply the FeatureSpace to the raw data "
                    "(space(x), or dataset.map(lambda x, y: (space(x), y))) and build the model on "
                    "space.get_encoded_features().")
            from lamina.layers.core.input_layer import Input

            self._lm_inputs = {name: Input(shape=(1,), dtype=feature.dtype, name=name)
                               for name, feature in self.features.items()}
        return self._lm_inputs

    def get_encoded_features(self):
        """The model inputs the encoded features feed: ``lm.Input(shape=(width,))`` in
        ``"concat"`` mode, ``{name: lm.Input(...)}`` in ``"dict"`` mode. Build the model on
        them and train it on ``space(x)`` (Keras's ``Model(inputs=encoded_features, ...)``)."""
        self._check_if_adapted()
        if self._lm_encoded is None:
            from lamina.layers.core.input_layer import Input

            features, crosses = self._names()
            widths = {name: self._width_and_dtype(name) for name in features + crosses}
            if self.output_mode == "concat":
                self._check_concatenable(widths)
                total = sum(width for width, _ in widths.values())
                self._lm_encoded = Input(shape=(total,), name="encoded_features")
            else:
                self._lm_encoded = {name: Input(shape=(width,), dtype=dtype, name=name)
                                    for name, (width, dtype) in widths.items()}
        return self._lm_encoded

    def _check_concatenable(self, widths):
        for name, (_, dtype) in widths.items():
            if dtype != "float32":
                raise ValueError(f"Cannot concatenate features because feature '{name}' has not been encoded (it "
                                 f"has dtype {dtype}). Consider using `output_mode='dict'`.")

    # -- calling --------------------------------------------------------------------------------

    def __call__(self, data):
        self._check_if_adapted()
        if not isinstance(data, dict):
            raise ValueError(f"A FeatureSpace can only be called with a dict. Received: data={data} (of type "
                             f"{type(data)}")
        from lamina.layers.preprocessing.tf_graph import is_tf_graph_tensor

        if any(is_tf_graph_tensor(value) for value in data.values()):
            return self._call_in_tf_graph(data)
        import jax

        # device_put, not jnp.asarray: the latter compiles a small program per new shape.
        return jax.device_put(self._encode(data))

    # tf.data's map runs autograph over the mapped function and everything it calls; this
    # marker (TensorFlow's, as set by tf.autograph.experimental.do_not_convert) keeps it out
    # of this plain Python code, which would otherwise be converted for seconds, to no use.
    __call__.autograph_info__ = frozenset()

    def _encode(self, data):
        """The encoding as NumPy arrays (a dict in "dict" mode)."""
        missing = [name for name in self.features if name not in data]
        if missing:
            raise ValueError(f"FeatureSpace '{self.name}': the data has no feature(s) {missing}; its keys are "
                             f"{sorted(data)}.")
        columns, rebatched = {}, False
        for name in self.features:
            column = _as_array(data[name], self.features[name].dtype)
            if column.ndim == 0:
                column, rebatched = column.reshape(1, 1), True
            elif column.ndim == 1:
                column = column[:, None]
            columns[name] = column
        preprocessed = {name: _on_host(self.preprocessors[name], columns[name]) for name in self.features}
        crossed = {cross.name: _on_host(self.crossers[cross.name], [preprocessed[n] for n in cross.feature_names])
                   for cross in self.crosses}
        features, crosses = self._names()
        encoders = self._encoders()
        encoded = {}
        for name in features + crosses:
            value = preprocessed[name] if name in preprocessed else crossed[name]
            if name in encoders:
                value = _on_host(encoders[name], value)
            encoded[name] = value
        if self.output_mode == "dict":
            if rebatched:
                encoded = {name: v[0] if v.ndim == 2 and v.shape[0] == 1 else v for name, v in encoded.items()}
            return encoded
        self._check_concatenable({name: (None, _dtype_name(v)) for name, v in encoded.items()})
        merged = np.concatenate([v.astype(np.float32, copy=False) for v in encoded.values()], axis=-1)
        return merged[0] if rebatched else merged

    def _call_in_tf_graph(self, data):
        # dataset.map traces with symbolic tensors: encode on the host through numpy_function.
        import tensorflow as tf

        names = list(self.features)
        tensors = [data[name] for name in names]
        features, crosses = self._names()
        widths = {name: self._width_and_dtype(name) for name in features + crosses}
        batch = tensors[0].shape[0] if tensors[0].shape.rank and tensors[0].shape.rank > 0 else None
        scalar = tensors[0].shape.rank == 0

        def on_host(*arrays):
            arrays = [np.char.decode(a, "utf-8") if a.dtype.kind == "S" else a for a in arrays]
            encoded = self._encode(dict(zip(names, arrays, strict=True)))
            if self.output_mode == "dict":
                return [np.asarray(encoded[name]).astype(widths[name][1]) for name in features + crosses]
            return np.asarray(encoded, np.float32)

        if self.output_mode == "dict":
            outputs = tf.numpy_function(on_host, tensors, Tout=[tf.as_dtype(widths[n][1]) for n in features + crosses],
                                        stateful=False, name=f"{self.name}_on_host")
            result = {}
            for name, output in zip(features + crosses, outputs, strict=True):
                output.set_shape((widths[name][0],) if scalar else (batch, widths[name][0]))
                result[name] = output
            return result
        output = tf.numpy_function(on_host, tensors, Tout=tf.float32, stateful=False, name=f"{self.name}_on_host")
        self._check_concatenable(widths)
        total = sum(width for width, _ in widths.values())
        output.set_shape((total,) if scalar else (batch, total))
        return output

    def call(self, data):
        return self(data)

    # -- saving -------------------------------------------------------------------------------

    def get_config(self):
        from lamina.saving import serialize_keras_object

        return {
            "name": self.name,
            "features": {name: serialize_keras_object(feature) for name, feature in self.features.items()},
            "output_mode": self.output_mode,
            "crosses": [serialize_keras_object(cross) for cross in self.crosses],
            "crossing_dim": self.crossing_dim,
            "hashing_dim": self.hashing_dim,
            "num_discretization_bins": self.num_discretization_bins,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_compile_config(self):
        return None  # a FeatureSpace is saved as a model file, with nothing compiled

    def save(self, filepath):
        """Write the FeatureSpace (its features and everything ``adapt`` learned) to a ``.lamina``
        model file; ``lm.load_model(filepath)`` gives it back, ready to call."""
        from lamina.saving.model_file import save_model

        filepath = str(filepath)
        if not filepath.endswith(".lamina"):
            raise ValueError(f"FeatureSpace '{self.name}' is saved as a lamina model file ending in '.lamina'; "
                             f"got {filepath!r}.")
        self._check_if_adapted()
        save_model(self, filepath)


def _dtype_name(value):
    return "string" if value.dtype.kind in "OSU" else value.dtype.name


def _on_host(layer, x):
    """``layer(x)`` as a NumPy array, computed with NumPy from the layer's own state for the
    built-in preprocessors a FeatureSpace makes. A FeatureSpace runs in the data pipeline,
    where every new batch size would otherwise compile each layer's JAX operations anew
    (seconds per size). Any other layer (a subclass, a custom preprocessor) is called."""
    layers = _layers()
    kind = type(layer)
    if kind is layers.Identity:
        return np.asarray(x)
    if kind is layers.Rescaling:
        dtype = np.dtype(layer.dtype)
        return np.asarray(x).astype(dtype) * np.asarray(layer.scale, dtype) + np.asarray(layer.offset, dtype)
    if kind is layers.Normalization and not layer.invert:
        from lamina.layers.preprocessing.normalization import _EPSILON

        mean, variance = (np.asarray(v) for v in layer._statistics())
        return (np.asarray(x).astype(mean.dtype) - mean) / np.maximum(np.sqrt(variance), mean.dtype.type(_EPSILON))
    if kind is layers.Discretization and layer.output_mode == "int" and layer.bin_boundaries is not None:
        values = np.asarray(x)
        values = values if np.issubdtype(values.dtype, np.floating) else values.astype(layer.compute_dtype)
        return np.digitize(values, np.asarray(layer.bin_boundaries, values.dtype)).astype(np.int32)
    if kind is layers.IntegerLookup and not layer.invert:
        values = np.asarray(x)
        values = values if np.issubdtype(values.dtype, np.integer) else values.astype(np.int32)
        return np.asarray(layer._encode(layer._lookup(values, np), np))
    if kind is layers.CategoryEncoding and layer.output_mode == "multi_hot" and not layer.sparse:
        from lamina.layers.preprocessing.categorical_output import encode

        indices = np.asarray(x)
        layer._check_range(indices)
        return encode(indices, "multi_hot", layer.num_tokens, np.dtype(layer.dtype), xp=np)
    return np.asarray(layer(x))


def _as_array(value, dtype):
    """A feature's values as a NumPy array (strings as ``str``), from lists, scalars, NumPy,
    JAX, TensorFlow eager tensors or pandas objects."""
    from lamina.layers.preprocessing.host_data import to_numpy

    if hasattr(value, "to_numpy") and not hasattr(value, "numpy"):
        value = value.to_numpy()  # pandas
    array = to_numpy(value)
    if dtype == "string":
        return array if array.dtype.kind == "U" else array.astype(str)
    if dtype == "float32" and array.dtype.kind in "biuf":
        return array.astype(np.float32, copy=False)
    return array


def _column(value, dtype):
    """A batch of one feature for adapt: shape ``(batch, 1)``, as Keras adds the last axis."""
    array = _as_array(value, dtype)
    return array.reshape(-1, 1) if array.ndim <= 1 else array


def _dict_batches(dataset, owner):
    """The dict batches ``adapt`` reads from ``dataset`` (see ``FeatureSpace.adapt``)."""
    if hasattr(dataset, "to_dict") and hasattr(dataset, "columns"):  # a pandas DataFrame
        dataset = {str(column): dataset[column].to_numpy() for column in dataset.columns}
    if isinstance(dataset, dict):
        yield from _rebatch([dataset], sliced=True)
        return
    if hasattr(dataset, "as_numpy_iterator"):  # tf.data
        dataset = dataset.as_numpy_iterator()
    elif not hasattr(dataset, "__iter__") or isinstance(dataset, (str, bytes)):
        raise ValueError("`adapt()` can only be called on a dict of arrays/lists, a pandas DataFrame, a "
                         f"tf.data.Dataset or an iterable of dict batches. Received instead: {dataset} (of type "
                         f"{type(dataset)})")
    yield from _rebatch(iter(dataset), sliced=False)


def _rebatch(elements, sliced):
    """Dict batches: a dict of whole columns is cut into batches of 32 rows; a stream of
    single samples (scalar values) is grouped 32 at a time; batches pass through."""
    pending = []
    for element in elements:
        if isinstance(element, tuple):
            element = element[0]  # (x, y) batches
        if not isinstance(element, dict):
            raise ValueError(f"FeatureSpace.adapt() reads dicts of features; got an element of type "
                             f"{type(element).__name__}.")
        columns = {key: value if hasattr(value, "shape") and not hasattr(value, "to_numpy") else
                   np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value)
                   for key, value in element.items()}
        if sliced:
            rows = len(next(iter(columns.values())))
            for start in range(0, rows, _ADAPT_BATCH):
                yield {key: value[start:start + _ADAPT_BATCH] for key, value in columns.items()}
        elif all(np.ndim(value) == 0 for value in columns.values()):
            pending.append(columns)
            if len(pending) == _ADAPT_BATCH:
                yield {key: np.stack([p[key] for p in pending]) for key in columns}
                pending = []
        else:
            yield columns
    if pending:
        yield {key: np.stack([p[key] for p in pending]) for key in pending[0]}
