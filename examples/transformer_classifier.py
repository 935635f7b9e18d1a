"""A small Transformer classifies padded token sequences by the order of two tokens.

Each synthetic sequence has a random length of 4..16 tokens drawn from 1..20 and is right-padded
with 0 to 16 steps; it holds exactly one 7 and one 3, and its label is 1 when the 7 comes before
the 3. The bag of tokens is the same for both classes, so only the order tells them apart, and
the classes are balanced by construction.

The Functional model embeds the ids with ``Embedding(mask_zero=True)`` and adds a learned
position embedding (``PositionEmbedding``, a small custom layer that passes the padding mask
on), then runs one Transformer block: ``MultiHeadAttention`` self-attention (which reads the
padding mask of its query and value inputs, so no step attends to a padded step), a residual
``Add`` and ``LayerNormalization``, a feed-forward block (``FeedForward``: Dense 64 relu then
Dense 32, also passing the mask on), a second residual and ``LayerNormalization``; a masked
``GlobalAveragePooling1D`` (padded steps left out of the mean) feeds a ``Dense(2)`` of logits.

The model takes sequences of any length up to ``MAX_LENGTH``; with the mask reaching every
layer that mixes steps, appending more padding does not change its output.

    python examples/transformer_classifier.py [--epochs N] [--seed N]
"""

import argparse

import numpy as np

import lamina as lm

SEQUENCE_LENGTH = 16   # T: every sequence is padded to this many steps
MAX_LENGTH = 64        # the position table's size: the model accepts inputs up to this long
VOCABULARY = 21        # ids 1..20, and 0 for padding
FIRST, SECOND = 7, 3   # label 1 when FIRST comes before SECOND


def make_data(count: int, seed: int, length: int = SEQUENCE_LENGTH):
    """(count, length) int32 ids, right-padded with 0, and their 0/1 labels."""
    rng = np.random.default_rng(seed)
    others = np.array([t for t in range(1, VOCABULARY) if t not in (FIRST, SECOND)])
    ids = np.zeros((count, length), dtype="int32")
    labels = np.zeros(count, dtype="int32")
    for i in range(count):
        steps = rng.integers(4, length + 1)
        ids[i, :steps] = rng.choice(others, size=steps)
        first_at, second_at = rng.choice(steps, size=2, replace=False)
        ids[i, first_at], ids[i, second_at] = FIRST, SECOND
        labels[i] = int(first_at < second_at)
    return ids, labels


class PositionEmbedding(lm.Layer):
    """Adds a learned ``(MAX_LENGTH, dim)`` position vector to each step; the mask passes on."""

    def __init__(self, max_length=MAX_LENGTH, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.supports_masking = True

    def build(self, input_shape):
        self.positions = self.add_weight(shape=(self.max_length, input_shape[-1]),
                                         initializer="random_normal", name="positions")

    def call(self, inputs):
        steps = inputs.shape[-2]
        return inputs + self.positions[:steps].astype(inputs.dtype)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}


class FeedForward(lm.Layer):
    """The block's position-wise Dense(hidden, relu) -> Dense(dim); the mask passes on
    (lamina's ``Dense`` drops it)."""

    def __init__(self, hidden=64, dim=32, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.dim = hidden, dim
        self.inner = lm.layers.Dense(hidden, activation="relu")
        self.outer = lm.layers.Dense(dim)
        self.supports_masking = True

    def call(self, inputs):
        return self.outer(self.inner(inputs))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "dim": self.dim}


def build_model(dim: int = 32) -> lm.Model:
    ids = lm.Input(shape=(None,), dtype="int32", name="ids")
    x = lm.layers.Embedding(VOCABULARY, dim, mask_zero=True, name="tokens")(ids)
    x = PositionEmbedding(name="positions")(x)
    # Self-attention: the padding mask of x reaches MultiHeadAttention as its query and value mask.
    attended = lm.layers.MultiHeadAttention(num_heads=2, key_dim=16, name="attention")(x, x)
    x = lm.layers.LayerNormalization(name="norm_1")(lm.layers.Add(name="residual_1")([x, attended]))
    fed = FeedForward(64, dim, name="feed_forward")(x)
    x = lm.layers.LayerNormalization(name="norm_2")(lm.layers.Add(name="residual_2")([x, fed]))
    x = lm.layers.GlobalAveragePooling1D(name="pool")(x)   # the mean over unpadded steps only
    return lm.Model(ids, lm.layers.Dense(2, name="logits")(x), name="transformer_classifier")


def main(epochs: int = 20, seed: int = 0, verbose: int = 1, train_size: int = 4000) -> float:
    """Train and return the held-out accuracy."""
    lm.random.set_seed(seed)
    x_train, y_train = make_data(train_size, seed)
    x_test, y_test = make_data(1000, seed + 1)
    model = build_model()
    if verbose:
        model.summary()
    model.compile(
        optimizer=lm.optimizers.Adam(learning_rate=1e-3),
        loss=lm.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.1,
              verbose=2 if verbose else 0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    if verbose:
        print(f"held-out accuracy: {accuracy:.2%} (loss {loss:.4f}) on {len(x_test)} sequences "
              f"(chance: 50%)")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    main(epochs=arguments.epochs, seed=arguments.seed)
