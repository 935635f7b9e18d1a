"""``IndexLookup``: the vocabulary table shared by ``IntegerLookup`` and ``StringLookup``.

Index layout, as Keras's: ``[mask] + [OOV] * num_oov_indices + tokens``, the mask slot only
with a ``mask_token`` and ``output_mode="int"``. A token maps to its position; an unknown
one to the OOV index (with several OOV indices: integers by ``value mod num_oov_indices``,
strings by FarmHash, or SipHash with a ``salt``); the mask token to 0 (in the other output
modes it encodes to nothing). ``invert=True`` maps indices back to tokens.

The lookup is ``searchsorted`` over the sorted tokens, written once for NumPy (strings, on the
host) and ``jax.numpy`` (integers, inside compiled code too). A vocabulary given to the
constructor is part of the config; an adapted one (and adapted ``tf_idf`` weights) is saved
as the layer's assets (``vocabulary.txt``, ``idf_weights.npy``) by ``model.save``, as Keras
stores it in its ``assets/``.
"""

from __future__ import annotations

import collections
import os

import jax
import jax.numpy as jnp
import numpy as np

from lamina.layers.preprocessing.categorical_output import check_mode, encode, encoded_shape
from lamina.layers.preprocessing.fingerprint import buckets, salt_pair
from lamina.layers.preprocessing.host_data import batches, refuse_traced, to_numpy

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")
VOCABULARY_FILE = "vocabulary.txt"
IDF_FILE = "idf_weights.npy"


def _listify(value):
    if value is None or isinstance(value, str):
        return value
    return np.asarray(value).tolist()


class IndexLookup:
    """The vocabulary and lookup of ``IntegerLookup``/``StringLookup`` (mixed into a layer)."""

    _string_tokens = False  # StringLookup: True

    def __init__(self, max_tokens, num_oov_indices, mask_token, oov_token, vocabulary=None, idf_weights=None,
                 invert=False, output_mode="int", sparse=False, pad_to_max_tokens=False, oov_method="floormod",
                 salt=None, **kwargs):
        frozen_size = kwargs.pop("vocabulary_size", None)
        has_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"{owner}: `max_tokens`, if set, must be greater than 1; got {max_tokens}.")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{owner}: `pad_to_max_tokens=True` needs `max_tokens`.")
        if num_oov_indices < 0:
            raise ValueError(f"{owner}: `num_oov_indices` must be >= 0; got {num_oov_indices}.")
        if oov_method not in ("floormod", "farmhash"):
            raise ValueError(f"{owner}: `oov_method` must be 'floormod' or 'farmhash'; got {oov_method!r}.")
        if salt is not None:
            if not self._string_tokens and oov_method != "farmhash":
                raise ValueError(f"{owner}: `salt` can only be used with oov_method='farmhash'.")
            salt = salt_pair(owner, salt)
        output_mode = check_mode(owner, output_mode, _MODES)
        if invert and output_mode != "int":
            raise ValueError(f"{owner}: `invert=True` needs output_mode='int'; got {output_mode!r}.")
        if sparse:
            raise ValueError(
                f"{owner}: `sparse=True` is not supported (as in Keras, only its TensorFlow backend "
                "gives sparse lookups); the outputs are dense arrays."
            )
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{owner}: `idf_weights` is only used with output_mode='tf_idf'.")
        if output_mode == "tf_idf" and has_vocabulary and idf_weights is None:
            raise ValueError(f"{owner}: with a `vocabulary` and output_mode='tf_idf', give `idf_weights` too.")
        self.invert = invert
        self.max_tokens = max_tokens
        self.num_oov_indices = num_oov_indices
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.output_mode = output_mode
        self.sparse = sparse
        self.pad_to_max_tokens = pad_to_max_tokens
        self.oov_method = oov_method
        self.salt = salt
        self.input_vocabulary = None if isinstance(vocabulary, (str, os.PathLike)) else vocabulary
        self.input_idf_weights = idf_weights
        self._has_input_vocabulary = has_vocabulary
        self._frozen_vocab_size = frozen_size
        self._tokens = self._sorted_keys = self._empty_tokens()
        self._sorted_indices = np.zeros((0,), np.int64)
        self._index = {}
        self.idf_weights = None
        self.reset_state()
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        elif output_mode == "tf_idf" and self._depth() is not None:
            # Rebuilt from the config of an adapted layer: the weights come with load_assets, but a
            # Functional model traces the layer before that, and needs weights of the right size.
            self.idf_weights = np.zeros(self._depth(), "float32")

    # -- the vocabulary ---------------------------------------------------------------------
    def _owner(self):
        return f"{type(self).__name__} '{self.path}'"

    def _empty_tokens(self):
        return np.zeros((0,), dtype=str if self._string_tokens else np.int64)

    def _as_tokens(self, values) -> np.ndarray:
        array = to_numpy(values)
        return array.astype(str) if self._string_tokens else array.astype(np.int64)

    def _oov_start_index(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start_index(self):
        return self._oov_start_index() + self.num_oov_indices

    def vocabulary_size(self) -> int:
        """The number of indices: mask and OOV slots plus the tokens."""
        return self._token_start_index() + len(self._tokens)

    def get_vocabulary(self, include_special_tokens=True) -> list:
        """The vocabulary in index order (with the mask and OOV tokens, so that a token's
        position is its index; ``include_special_tokens=False``: the tokens only)."""
        specials = [self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices
        tokens = self._tokens.tolist()
        return specials + tokens if include_special_tokens else tokens

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Replace the vocabulary (a list/array of tokens, or the path of a file with one token
        per line) and, with output_mode='tf_idf', its inverse document frequency weights. A
        vocabulary may start with the special tokens in index order; they are then skipped."""
        owner = self._owner()
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError(f"{owner}: `idf_weights` must be set with output_mode='tf_idf'.")
        elif idf_weights is not None:
            raise ValueError(f"{owner}: `idf_weights` is only used with output_mode='tf_idf'.")
        if isinstance(vocabulary, (str, os.PathLike)):
            if not os.path.exists(vocabulary):
                raise ValueError(f"{owner}: vocabulary file {os.fspath(vocabulary)!r} does not exist.")
            if self.output_mode == "tf_idf":
                raise ValueError(f"{owner}: output_mode='tf_idf' cannot take its vocabulary from a file.")
            vocabulary = _read_lines(vocabulary)
        vocabulary = self._as_tokens(vocabulary if not isinstance(vocabulary, tuple) else list(vocabulary))
        if vocabulary.ndim != 1 or vocabulary.size == 0:
            raise ValueError(f"{owner}: the vocabulary must be a non-empty 1-D list of tokens; got "
                             f"shape {vocabulary.shape}.")
        start = self._token_start_index()
        specials = self._as_tokens([self.mask_token] * self._oov_start_index() + [self.oov_token] * self.num_oov_indices)
        found_specials = vocabulary.size >= start and np.array_equal(vocabulary[:start], specials)
        tokens = vocabulary[start:] if found_specials else vocabulary
        repeated = [t for t, n in collections.Counter(tokens.tolist()).items() if n > 1]
        if repeated:
            raise ValueError(f"{owner}: the vocabulary repeats {repeated}; each token must appear once.")
        order = f"Include them only at the start of the vocabulary, in this order: {specials.tolist()}, or leave them out."
        if self.mask_token is not None and self.mask_token in tokens.tolist():
            raise ValueError(f"{owner}: the mask token {self.mask_token!r} is in the vocabulary. {order}")
        if self.oov_token is not None and self.invert and self.oov_token in tokens.tolist():
            raise ValueError(f"{owner}: the OOV token {self.oov_token!r} is in the vocabulary. {order}")
        if self.max_tokens is not None and start + tokens.size > self.max_tokens:
            raise ValueError(
                f"{owner}: the vocabulary size {start + tokens.size} (with {start} special indices) exceeds "
                f"max_tokens={self.max_tokens}."
            )
        if self.output_mode == "tf_idf":
            idf_weights = np.asarray(idf_weights, dtype="float32")
            if idf_weights.ndim != 1 or len(idf_weights) != len(vocabulary):
                raise ValueError(
                    f"{owner}: `idf_weights` must be 1-D with one weight per vocabulary entry "
                    f"({len(vocabulary)}); got shape {idf_weights.shape}."
                )
            front = 0 if found_specials else start
            back = self.max_tokens - front - len(idf_weights) if self.pad_to_max_tokens else 0
            idf_weights = np.concatenate([np.full(front, np.mean(idf_weights), "float32"), idf_weights,
                                          np.zeros(back, "float32")])
        self._set_tokens(tokens, idf_weights)

    def _set_tokens(self, tokens, idf_weights=None):
        new_size = self._token_start_index() + len(tokens)
        if (self.output_mode != "int" and not self.pad_to_max_tokens and len(self._tokens)
                and new_size != self._frozen_vocab_size):
            raise RuntimeError(
                f"{self._owner()}: with output_mode={self.output_mode!r} and pad_to_max_tokens=False the "
                f"vocabulary size is fixed once set ({self._frozen_vocab_size}); the new one has {new_size}."
            )
        self._tokens = np.asarray(tokens)
        order = np.argsort(self._tokens, kind="stable")
        self._sorted_keys = self._tokens[order]
        self._sorted_indices = (order + self._token_start_index()).astype(np.int64)
        self._index = dict(zip(self._tokens.tolist(), range(self._token_start_index(), new_size)))
        if idf_weights is not None:
            self.idf_weights = np.asarray(idf_weights, dtype="float32")
        self._frozen_vocab_size = new_size

    # -- adapt ------------------------------------------------------------------------------
    def adapt(self, data, steps=None):
        """Learn the vocabulary from ``data``: every token, most frequent first (ties: the
        larger token first), cut to ``max_tokens``; with output_mode='tf_idf', also each
        token's inverse document frequency. ``data``: an array or list (rows are documents),
        or an iterable of batches (a generator, ``tf.data``/``lm.data`` dataset; ``(x, y)``
        batches use ``x``; ``steps`` batches at most)."""
        self.reset_state()
        if isinstance(data, (list, tuple, np.ndarray, jax.Array)) or hasattr(data, "numpy"):
            data = self._as_tokens(data)
            self.update_state(data[:, None] if data.ndim == 1 else data)
        else:
            for batch in batches(data, steps):
                self.update_state(batch)
        self.finalize_state()

    def update_state(self, data):
        """Count the tokens of one batch (a 2-D array or a list of token rows: the documents)."""
        if self._has_input_vocabulary:
            raise ValueError(
                f"Cannot adapt {self._owner()}: it was given a fixed vocabulary (the `vocabulary` argument)."
            )
        if isinstance(data, list) and data and isinstance(data[0], (list, np.ndarray)):
            # Rows of Python strings (TextVectorization's tokens) are counted as they are.
            rows = [r if self._string_tokens and isinstance(r, list) else self._as_tokens(r).reshape(-1).tolist()
                    for r in data]
        else:
            array = self._as_tokens(data)
            if array.ndim == 0:
                array = array[None]
            if array.ndim == 1:
                array = array[None]
            rows = array.reshape(array.shape[0], -1).tolist()
        self._token_counts.update(token for row in rows for token in row)
        if self.output_mode == "tf_idf":
            self._document_counts.update(token for row in rows for token in set(row))
            self._num_documents += len(rows)

    def finalize_state(self):
        """Set the vocabulary (and idf weights) from the counts of ``update_state``."""
        if self._has_input_vocabulary or not self._token_counts:
            return
        for special in (self.mask_token, self.oov_token):
            self._token_counts.pop(special, None)
        ranked = sorted(self._token_counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
        if self.max_tokens:
            ranked = ranked[:self.max_tokens - self._token_start_index()]
        tokens = self._as_tokens([token for token, _ in ranked]) if ranked else self._empty_tokens()
        idf = None
        if self.output_mode == "tf_idf":
            documents = np.asarray([self._document_counts[t] for t in tokens.tolist()], dtype=np.float64)
            idf = np.log(1 + self._num_documents / (1 + documents)).astype("float32")
            front = np.full(self._token_start_index(), np.mean(idf) if idf.size else 0.0, "float32")
            back = np.zeros(self.max_tokens - front.size - idf.size if self.pad_to_max_tokens else 0, "float32")
            idf = np.concatenate([front, idf, back])
        self._set_tokens(tokens, idf)
        self.reset_state()

    def reset_state(self):
        """Forget the counts gathered by ``update_state``."""
        self._token_counts = collections.Counter()
        self._document_counts = collections.Counter()
        self._num_documents = 0

    # -- the lookup ---------------------------------------------------------------------------
    def _depth(self):
        return self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size

    def _lookup(self, inputs, xp):
        """Indices of ``inputs`` (tokens), or tokens of ``inputs`` (indices) when inverted."""
        if self.invert:
            return self._invert(inputs, xp)
        if xp is np and inputs.size:
            # On the host each distinct token is looked up once (searchsorted over strings is
            # slow), then spread back.
            unique, inverse = np.unique(inputs, return_inverse=True)
            return self._lookup_tokens(unique, np)[inverse.reshape(-1)].reshape(inputs.shape)
        return self._lookup_tokens(inputs, xp)

    def _lookup_rows(self, rows, fill) -> np.ndarray:
        """Indices of rows of tokens (lists of str, as TextVectorization splits them), padded
        with ``fill`` to the longest row: one dict lookup per token, no string array built;
        tokens not in the vocabulary go through ``_lookup`` (mask, OOV buckets, the
        num_oov_indices=0 check)."""
        lengths = np.fromiter(map(len, rows), np.int64, len(rows))
        index = self._index
        flat = np.fromiter((index.get(t, -2) for row in rows for t in row), np.int64, int(lengths.sum()))
        missing = np.flatnonzero(flat == -2)
        if missing.size:
            tokens = [t for row in rows for t in row]
            flat[missing] = self._lookup(np.asarray([tokens[i] for i in missing.tolist()], dtype=str), np)
        out = np.full((len(rows), int(lengths.max(initial=0))), fill, np.int64)
        out[np.arange(out.shape[1]) < lengths[:, None]] = flat  # row-major: the tokens in order
        return out

    def _lookup_tokens(self, inputs, xp):
        default = self._oov_start_index() if self.num_oov_indices == 1 else -1
        keys = self._sorted_keys if xp is np else jnp.asarray(self._sorted_keys)
        if keys.size:
            position = xp.clip(xp.searchsorted(keys, inputs), 0, keys.size - 1)
            found = keys[position] == inputs
            indices = xp.where(found, xp.asarray(self._sorted_indices)[position], default)
        else:
            found = xp.zeros(inputs.shape, bool)
            indices = xp.full(inputs.shape, default)
        if self.num_oov_indices > 1 and xp is np:
            missing = ~found  # only unknown tokens are hashed
            indices = np.array(indices)
            if missing.any():
                indices[missing] = self._oov_indices(inputs[missing], np)
        elif self.num_oov_indices > 1:
            indices = xp.where(found, indices, self._oov_indices(inputs, xp))
        if self.mask_token is not None:
            indices = xp.where(inputs == self.mask_token, 0 if self.output_mode == "int" else -1, indices)
        if self.num_oov_indices == 0 and not isinstance(indices, jax.core.Tracer):
            unknown = np.asarray(inputs)[np.asarray(indices) == -1]
            if unknown.size:
                raise ValueError(
                    f"{self._owner()}: with num_oov_indices=0 every input must be in the vocabulary; found "
                    f"out-of-vocabulary values {np.unique(unknown).tolist()[:10]} (set num_oov_indices=1)."
                )
        return indices

    def _oov_indices(self, inputs, xp):
        start = self._oov_start_index()
        if not self._string_tokens and self.oov_method != "farmhash":
            return xp.mod(inputs, self.num_oov_indices) + start
        refuse_traced(self, inputs)  # the string hashes run on the host
        return xp.asarray(buckets(np.asarray(inputs), self.num_oov_indices, self.salt) + start)

    def _invert(self, inputs, xp):
        table = np.asarray(self.get_vocabulary(), dtype=str if self._string_tokens else np.int64)
        if xp is not np:
            table = jnp.asarray(table)
        inputs = inputs.astype(np.int64) if xp is np else inputs
        size = table.shape[0]
        if size == 0:
            return xp.full(inputs.shape, self.oov_token, dtype=table.dtype)
        valid = (inputs >= 0) & (inputs < size)
        return xp.where(valid, table[xp.clip(inputs, 0, size - 1)], self.oov_token)

    def _encode(self, indices, xp):
        if self.output_mode == "int":
            return indices
        if self._depth() is None:
            raise RuntimeError(
                f"{self._owner()}: with output_mode={self.output_mode!r} and pad_to_max_tokens=False the "
                "vocabulary must be set before calling the layer: pass `vocabulary`, or call adapt()."
            )
        dtype = np.dtype(self.compute_dtype) if xp is np else self.compute_dtype
        mode = "count" if self.output_mode == "tf_idf" else self.output_mode
        outputs = encode(indices, mode, self._depth(), dtype, xp=xp)
        if self.output_mode == "tf_idf":
            if self.idf_weights is None:
                raise ValueError(f"{self._owner()}: output_mode='tf_idf' needs idf weights (give them, or adapt).")
            idf = xp.asarray(self.idf_weights, dtype=outputs.dtype)
            if xp is np:
                outputs *= idf  # in place: the output can be large (rows x vocabulary)
            else:
                outputs = outputs * idf
        return outputs

    def compute_output_shape(self, input_shape):
        if self.output_mode == "int":
            return tuple(input_shape)
        return encoded_shape(input_shape, "count" if self.output_mode == "tf_idf" else self.output_mode,
                             self._depth())

    # -- saving -----------------------------------------------------------------------------
    def get_config(self):
        return {
            **super().get_config(),
            "invert": self.invert,
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "oov_token": self.oov_token,
            "mask_token": self.mask_token,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "idf_weights": _listify(self.input_idf_weights),
            "vocabulary": _listify(self.input_vocabulary),
            "vocabulary_size": self._frozen_vocab_size,
            "oov_method": self.oov_method,
            "salt": self.salt,
        }

    def keras_file_config(self):
        """The config a ``.keras`` file gets: lamina writes no assets there, so an adapted
        vocabulary (and its idf weights, the special indices' included) goes in the config,
        which Keras reads as a given vocabulary."""
        if self.output_mode == "tf_idf":
            # Keras reads tf_idf weights only from an "idf_weights" entry of the weights file.
            raise ValueError(
                f"{self._owner()}: a layer with output_mode='tf_idf' cannot be written to a .keras file by "
                "lamina (Keras reads its idf weights from a weights-file entry lamina does not write). Save "
                "the model as .lamina, or use output_mode='count' and scale by the idf weights afterwards."
            )
        config = self.get_config()
        if self.input_vocabulary is None and len(self._tokens):
            config["vocabulary"] = _listify(self.get_vocabulary())
        return config

    def save_assets(self, folder):
        """Write an adapted (or file-given) vocabulary, and adapted idf weights, to ``folder``
        (a vocabulary given as a list travels in the config)."""
        if self.input_vocabulary is not None:
            return
        from lamina.saving.atomic import atomic_write  # noqa: PLC0415 - saving imports the layers

        with atomic_write(os.path.join(folder, VOCABULARY_FILE)) as path:
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(str(token) for token in self.get_vocabulary()))
        if self.output_mode == "tf_idf" and self.idf_weights is not None:
            with atomic_write(os.path.join(folder, IDF_FILE)) as path:
                with open(path, "wb") as f:
                    np.save(f, self.idf_weights)

    def load_assets(self, folder):
        """Read back what ``save_assets`` wrote (nothing when the config holds the vocabulary)."""
        vocabulary_path = os.path.join(folder, VOCABULARY_FILE)
        if self.input_vocabulary is not None or not os.path.exists(vocabulary_path):
            return
        lines = _read_lines(vocabulary_path)
        tokens = lines if self._string_tokens else [int(line) for line in lines]
        idf = None
        if self.output_mode == "tf_idf":
            idf = np.load(os.path.join(folder, IDF_FILE))
            tokens = tokens[self._token_start_index():]  # the saved weights already hold the front padding
            self._set_tokens(self._as_tokens(tokens) if tokens else self._empty_tokens(), idf)
            return
        self.set_vocabulary(tokens)


def _read_lines(path) -> list:
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


__all__ = ["IndexLookup"]
