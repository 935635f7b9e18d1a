"""A variational autoencoder on handwritten digits, trained with a custom loop and with ``fit``.

The end-to-end example of the Keras guide "Making new layers and models via subclassing"
("Putting it all together"), written with lamina and ``jax.numpy``: a ``Sampling`` layer (the
reparameterization trick, drawing from an ``lm.random.SeedGenerator`` the layer holds), an
``Encoder`` and a ``Decoder`` made of ``Dense`` layers, and a ``VariationalAutoEncoder`` model
whose ``call`` records the KL divergence with ``add_loss``.

The data is scikit-learn's ``load_digits`` (1797 8x8 images, no download), 64 pixels scaled to
[0, 1]. The model is trained twice from scratch: (a) with a hand-written loop — an ``lm.jit``
step taking the gradient of MSE reconstruction + ``sum(vae.losses)`` and applying it with Adam —
and (b) with ``compile`` / ``fit``, whose loss adds the KL term by itself.

    python examples/vae.py [--epochs N] [--seed N]
"""

import argparse

import jax.numpy as jnp
import numpy as np
from sklearn.datasets import load_digits

import lamina as lm

ORIGINAL_DIM = 64  # 8x8 pixels
INTERMEDIATE_DIM = 64
LATENT_DIM = 32
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


class Sampling(lm.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        # Its state is a variable: each compiled step draws new noise.
        self.seed_generator = lm.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = lm.random.normal(z_mean.shape, seed=self.seed_generator)
        return z_mean + jnp.exp(0.5 * z_log_var) * epsilon


class Encoder(lm.Layer):
    """Maps digits to a triplet (z_mean, z_log_var, z)."""

    def __init__(self, latent_dim=LATENT_DIM, intermediate_dim=INTERMEDIATE_DIM, name="encoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = lm.layers.Dense(intermediate_dim, activation="relu")
        self.dense_mean = lm.layers.Dense(latent_dim)
        self.dense_log_var = lm.layers.Dense(latent_dim)
        self.sampling = Sampling()

    def call(self, inputs):
        x = self.dense_proj(inputs)
        z_mean = self.dense_mean(x)
        z_log_var = self.dense_log_var(x)
        z = self.sampling((z_mean, z_log_var))
        return z_mean, z_log_var, z


class Decoder(lm.Layer):
    """Converts z, the encoded digit vector, back into pixels in [0, 1]."""

    def __init__(self, original_dim, intermediate_dim=INTERMEDIATE_DIM, name="decoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.dense_proj = lm.layers.Dense(intermediate_dim, activation="relu")
        self.dense_output = lm.layers.Dense(original_dim, activation="sigmoid")

    def call(self, inputs):
        x = self.dense_proj(inputs)
        return self.dense_output(x)


class VariationalAutoEncoder(lm.Model):
    """Combines the encoder and decoder into an end-to-end model for training."""

    def __init__(self, original_dim, intermediate_dim=INTERMEDIATE_DIM, latent_dim=LATENT_DIM,
                 name="autoencoder", **kwargs):
        super().__init__(name=name, **kwargs)
        self.original_dim = original_dim
        self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
        self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)

    def call(self, inputs):
        z_mean, z_log_var, z = self.encoder(inputs)
        reconstructed = self.decoder(z)
        # KL divergence regularization loss.
        kl_loss = -0.5 * jnp.mean(z_log_var - z_mean**2 - jnp.exp(z_log_var) + 1)
        self.add_loss(kl_loss)
        return reconstructed


def load_data():
    """The 1797 digits as float32 rows of 64 pixels in [0, 1]."""
    images = load_digits().data
    return (images / 16.0).astype(np.float32)  # pixel intensities are 0..16


def train_custom_loop(x, epochs, seed=0, verbose=True):
    """(a) A hand-written loop; returns the mean loss of each epoch."""
    rng = np.random.default_rng(seed)
    vae = VariationalAutoEncoder(ORIGINAL_DIM, INTERMEDIATE_DIM, LATENT_DIM)
    vae(x[:1])  # build now, so that trainable_weights exist for the step
    optimizer = lm.optimizers.Adam(learning_rate=LEARNING_RATE)
    mse_loss_fn = lm.losses.MeanSquaredError()

    def loss_fn(x_batch):
        reconstructed = vae(x_batch)
        loss = mse_loss_fn(x_batch, reconstructed)
        return loss + sum(vae.losses)  # add the KL divergence regularization loss

    loss_and_grads = lm.value_and_grad(loss_fn, vae.trainable_weights)

    @lm.jit
    def train_step(x_batch):
        loss, grads = loss_and_grads(x_batch)
        optimizer.apply(grads, vae.trainable_weights)
        return loss

    epoch_losses = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x))  # a new shuffle each epoch
        batch_losses = []
        for i in range(0, len(order), BATCH_SIZE):
            batch_losses.append(train_step(x[order[i:i + BATCH_SIZE]]))
        # Losses stay on the device during the epoch; one sync per epoch.
        epoch_losses.append(float(jnp.mean(jnp.stack(batch_losses))))
        if verbose:
            print(f"epoch {epoch:3d}/{epochs}  mean loss {epoch_losses[-1]:.4f}")
    return vae, epoch_losses


def train_with_fit(x, epochs, verbose=True):
    """(b) ``compile`` and ``fit``: the KL term from ``add_loss`` joins the MSE by itself."""
    vae = VariationalAutoEncoder(ORIGINAL_DIM, INTERMEDIATE_DIM, LATENT_DIM)
    optimizer = lm.optimizers.Adam(learning_rate=LEARNING_RATE)
    vae.compile(optimizer, loss=lm.losses.MeanSquaredError())
    history = vae.fit(x, x, epochs=epochs, batch_size=BATCH_SIZE, verbose=2 if verbose else 0)
    return vae, history.history["loss"]


def main(epochs=30, verbose=True, seed=0):
    """Train both ways; return ``(custom_loop_losses, fit_losses)``, one mean loss per epoch.

    The last items are the final losses of each mode.
    """
    lm.random.set_seed(seed)
    x = load_data()

    if verbose:
        print("(a) custom training loop")
    _, loop_losses = train_custom_loop(x, epochs, seed=seed, verbose=verbose)

    if verbose:
        print("(b) compile / fit")
    vae, fit_losses = train_with_fit(x, epochs, verbose=verbose)

    if verbose:
        print(f"custom loop: loss {loop_losses[0]:.4f} -> {loop_losses[-1]:.4f}")
        print(f"fit:         loss {fit_losses[0]:.4f} -> {fit_losses[-1]:.4f}")
        vae(x[:1])
        print(f"KL term of the last call (vae.losses): {float(vae.losses[0]):.4f}")
    return loop_losses, fit_losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
