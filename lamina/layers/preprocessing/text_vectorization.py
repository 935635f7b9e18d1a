"""``TextVectorization``: strings to token indices or bag-of-words vectors, on the host."""

from __future__ import annotations

import re
import string

import numpy as np

from lamina.layers.preprocessing.categorical_output import check_mode
from lamina.layers.preprocessing.host_data import HostLayer, batches, to_numpy
from lamina.layers.preprocessing.string_lookup import StringLookup
from lamina.saving.object_registry import register_builtin

_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")
# Keras's pattern (TensorFlow's regex_replace); ",-\." is the range from ',' to '.'.
_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_SPACE = re.compile(r"[ \t\n\r\v\f]+")
_PYTHON_ONLY_SPACE = re.compile(r"[\x1c-\x1f]")  # str.split() splits on these too; TensorFlow does not


def _ngrams(tokens: list, widths) -> list:
    """All n-grams of ``tokens`` for each width in turn, joined by spaces (as ``tf.strings.ngrams``)."""
    return [" ".join(tokens[i:i + w]) for w in widths for i in range(len(tokens) - w + 1)]


@register_builtin
class TextVectorization(HostLayer):
    """Turns strings into token indices or token vectors, as ``keras.layers.TextVectorization``.

    Each string is standardized (``"lower_and_strip_punctuation"``, the default; ``"lower"``;
    ``"strip_punctuation"``; ``None``; or a callable taking and returning a NumPy string
    array), split (``"whitespace"``, ``"character"``, ``None``, or a callable taking a 1-D
    NumPy string array and returning a list of token lists), expanded to n-grams (``ngrams``:
    an int ``n`` for 1..n, or a tuple of widths) and looked up in the vocabulary (index 0:
    padding ``""``; 1: out-of-vocabulary ``"[UNK]"``). As in Keras, lowercasing and
    whitespace are ASCII's. ``output_mode``: ``"int"`` (a row of indices per string, padded
    with 0 to the longest, or cut/padded to ``output_sequence_length``), ``"multi_hot"``,
    ``"count"``, ``"tf_idf"``, ``"one_hot"``. Learn the vocabulary with ``adapt(data)`` (most
    frequent first, cut to ``max_tokens``) or give ``vocabulary``.

    JAX arrays cannot hold strings: the layer computes with NumPy on the host and returns
    NumPy arrays (int64 indices, float32 vectors). Apply it to the texts before ``fit`` or in
    the data pipeline (``dataset.map``); inside traced code it raises an error saying so.

    Example:
        >>> import numpy as np, lamina as lm
        >>> vectorize = lm.layers.TextVectorization(output_sequence_length=4)
        >>> vectorize.adapt(["The cat sat.", "The dog sat down!"])
        >>> vectorize.get_vocabulary()
        ['', '[UNK]', 'the', 'sat', 'down', 'dog', 'cat']
        >>> vectorize(["the cat ran"]).tolist()
        [[2, 6, 1, 0]]
    """

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", **kwargs):
        has_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        vocabulary_size = kwargs.pop("vocabulary_size", None)
        super().__init__(**kwargs)
        owner = f"TextVectorization '{self.name}'"
        if sparse or ragged:
            raise ValueError(f"{owner}: `sparse=True` and `ragged=True` are not supported (as in Keras, only its "
                             "TensorFlow backend has sparse and ragged tensors); the outputs are dense arrays.")
        if not (standardize is None or standardize in _STANDARDIZE or callable(standardize)):
            raise ValueError(f"{owner}: `standardize` must be one of {_STANDARDIZE}, None or a callable; "
                             f"got {standardize!r}.")
        if not (split is None or split in _SPLIT or callable(split)):
            raise ValueError(f"{owner}: `split` must be one of {_SPLIT}, None or a callable; got {split!r}.")
        output_mode = check_mode(owner, output_mode, ("int", "one_hot", "multi_hot", "count", "tf_idf"))
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (ngrams is None or isinstance(ngrams, int) or (
                isinstance(ngrams, tuple) and all(isinstance(n, int) for n in ngrams))):
            raise ValueError(f"{owner}: `ngrams` must be None, an integer or a tuple of integers; got {ngrams!r}.")
        if output_mode == "int" and not (output_sequence_length is None or isinstance(output_sequence_length, int)):
            raise ValueError(f"{owner}: `output_sequence_length` must be None or an integer; got "
                             f"{output_sequence_length!r}.")
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError(f"{owner}: `output_sequence_length` is only used with output_mode='int' (got "
                             f"output_mode={output_mode!r}).")
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self._ngram_widths = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = pad_to_max_tokens
        self.sparse = sparse
        self.ragged = ragged
        self.encoding = encoding
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens, vocabulary=vocabulary, idf_weights=idf_weights, pad_to_max_tokens=pad_to_max_tokens,
            mask_token="", output_mode=output_mode, encoding=encoding, has_input_vocabulary=has_vocabulary,
            vocabulary_size=vocabulary_size, name=f"{self.name}_lookup",
        )

    # -- the text pipeline -------------------------------------------------------------------
    def _standardized(self, texts: np.ndarray) -> np.ndarray:
        if callable(self.standardize):
            return to_numpy(self.standardize(texts), self.encoding).astype(str)
        if self.standardize is None or texts.size == 0:
            return texts
        lower = self.standardize in ("lower", "lower_and_strip_punctuation")
        strip = self.standardize in ("strip_punctuation", "lower_and_strip_punctuation")

        def one(text):
            if lower:  # ASCII only, as TensorFlow's lower (str.lower is its fast path for ASCII text)
                text = text.lower() if text.isascii() else text.translate(_ASCII_LOWER)
            return _PUNCTUATION.sub("", text) if strip else text

        return np.vectorize(one, otypes=[str])(texts)

    def _tokens(self, inputs):
        """The inputs standardized, split and n-grammed: a list of token lists (one per
        string), or, with ``split=None`` and no n-grams, the array of strings itself."""
        texts = to_numpy(inputs, self.encoding)
        if texts.dtype.kind != "U":
            raise TypeError(f"TextVectorization '{self.path}' expects strings (a NumPy str/bytes/object array, a "
                            f"list of str or a tf.string tensor); got an array of dtype {texts.dtype}.")
        texts = self._standardized(texts)
        if self.split is None:
            if self._ngram_widths is None:
                return texts
            rows = [list(r) for r in np.atleast_2d(texts)]
        else:
            if texts.ndim > 1:
                if texts.shape[-1] != 1:
                    raise ValueError(
                        f"TextVectorization '{self.path}': to split strings the input must have rank 1 or a "
                        f"last axis of size 1; got shape {texts.shape}."
                    )
                texts = texts[..., 0]
            flat = np.atleast_1d(texts)
            if self.split == "whitespace":
                rows = [s.split() if s.isascii() and not _PYTHON_ONLY_SPACE.search(s)
                        else [t for t in _ASCII_SPACE.split(s) if t] for s in flat.tolist()]
            elif self.split == "character":
                rows = [list(s) for s in flat.tolist()]
            else:
                rows = [[str(t) for t in to_numpy(row, self.encoding).reshape(-1).tolist()]
                        for row in self.split(flat)]
        if self._ngram_widths is not None:
            rows = [_ngrams(row, self._ngram_widths) for row in rows]
        return rows

    def call(self, inputs):
        inputs = to_numpy(inputs, self.encoding)
        scalar = inputs.ndim == 0 and self.split is not None
        tokens = self._tokens(inputs)
        lookup = self._lookup_layer
        if isinstance(tokens, np.ndarray):  # split=None: one token per string, shape kept
            outputs = lookup(tokens)
            if self.output_mode == "int" and self.output_sequence_length is not None:
                outputs = self._fit_length(outputs)
            return outputs
        if self.output_mode == "int":  # padded with the mask index 0, as Keras pads
            indices = lookup._lookup_rows(tokens, fill=0)
            outputs = indices if self.output_sequence_length is None else self._fit_length(indices)
            return outputs[0] if scalar else outputs
        outputs = lookup._encode(lookup._lookup_rows(tokens, fill=-1), np)  # padding counts as nothing
        return outputs[0] if scalar else outputs

    def _fit_length(self, indices):
        length = self.output_sequence_length
        indices = indices[..., :length]
        pad = [(0, 0)] * (indices.ndim - 1) + [(0, length - indices.shape[-1])]
        return np.pad(indices, pad)

    # -- the vocabulary ----------------------------------------------------------------------
    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from ``data``: an array or list of strings, or an iterable of
        batches (a generator, ``tf.data``/``lm.data`` dataset; ``(x, y)`` batches use ``x``;
        ``steps`` batches at most). Each string is a document (for ``tf_idf``)."""
        self.reset_state()
        if isinstance(data, (list, tuple, np.ndarray)) or hasattr(data, "numpy"):
            array = to_numpy(data, self.encoding)
            self.update_state(array[:, None] if array.ndim == 1 else array)
        else:
            for batch in batches(data, steps):
                self.update_state(batch)
        self.finalize_state()

    def update_state(self, data):
        """Count the tokens of one batch of strings."""
        tokens = self._tokens(data)
        self._lookup_layer.update_state(tokens if not isinstance(tokens, np.ndarray) else tokens)

    def finalize_state(self):
        """Set the vocabulary from the counts of ``update_state``."""
        self._lookup_layer.finalize_state()

    def reset_state(self):
        """Forget the counts gathered by ``update_state``."""
        self._lookup_layer.reset_state()

    def get_vocabulary(self, include_special_tokens=True) -> list:
        """The vocabulary in index order (``""`` and ``"[UNK]"`` first unless
        ``include_special_tokens=False``)."""
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self) -> int:
        """The number of indices, the padding and OOV ones included."""
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Replace the vocabulary (and, with output_mode='tf_idf', the idf weights)."""
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights=idf_weights)

    def tf_output_dtype(self):
        return "int64" if self.output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return (input_shape[0], self.output_sequence_length)
        if self.split is None:
            input_shape = tuple(input_shape) + (1,) if len(input_shape) <= 1 else tuple(input_shape)
        else:  # a (batch, 1) input is split like a (batch,) one
            input_shape = tuple(input_shape)
            input_shape = (input_shape[:-1] if len(input_shape) > 1 and input_shape[-1] == 1 else input_shape) + (None,)
        return self._lookup_layer.compute_output_shape(input_shape)

    def get_config(self):
        from lamina.saving.serialization import serialize  # noqa: PLC0415 - saving imports the layers

        lookup = self._lookup_layer
        return {
            **super().get_config(),
            "max_tokens": lookup.max_tokens,
            "standardize": serialize(self.standardize) if callable(self.standardize) else self.standardize,
            "split": serialize(self.split) if callable(self.split) else self.split,
            "ngrams": list(self.ngrams) if isinstance(self.ngrams, tuple) else self.ngrams,
            "output_mode": self.output_mode,
            "output_sequence_length": self.output_sequence_length,
            "pad_to_max_tokens": lookup.pad_to_max_tokens,
            "sparse": self.sparse,
            "ragged": self.ragged,
            "vocabulary": lookup.get_config()["vocabulary"],
            "idf_weights": lookup.get_config()["idf_weights"],
            "encoding": self.encoding,
            "vocabulary_size": self.vocabulary_size(),
        }

    def keras_file_config(self):
        """The config a ``.keras`` file gets: the adapted vocabulary inlined (see IndexLookup)."""
        lookup = self._lookup_layer.keras_file_config()
        return {**self.get_config(), "vocabulary": lookup["vocabulary"]}

    @classmethod
    def from_config(cls, config):
        from lamina.saving.serialization import deserialize  # noqa: PLC0415 - saving imports the layers

        config = dict(config)
        for key in ("standardize", "split"):
            if isinstance(config.get(key), dict):
                config[key] = deserialize(config[key])
        return super().from_config(config)


__all__ = ["TextVectorization"]
