"""The model examples run at CI size and show what they promise: the subclassing guide's VAE
learns with a custom loop and with ``fit`` (the KL term travelling through ``add_loss``), and
the digits convnet learns and prints its summary."""

import importlib.util
import re
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    """Import ``examples/<name>.py`` as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"lamina_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def vae_module():
    return load_example("vae")


def test_vae_imports_without_side_effects(capsys):
    load_example("vae")
    assert capsys.readouterr().out == ""


def test_vae_losses_decrease_in_both_modes(vae_module, capsys):
    loop_losses, fit_losses = vae_module.main(epochs=3, verbose=True, seed=0)
    assert len(loop_losses) == len(fit_losses) == 3
    assert all(np.isfinite(loop_losses)) and all(np.isfinite(fit_losses))
    # From ~0.19-0.21 in the first epoch to ~0.10 in the third.
    assert loop_losses[-1] < 0.8 * loop_losses[0]
    assert fit_losses[-1] < 0.8 * fit_losses[0]
    out = capsys.readouterr().out
    printed = [float(m) for m in re.findall(r"epoch +\d+/3 +mean loss (\d+\.\d+)", out)]
    assert printed == pytest.approx(loop_losses, abs=1e-4)
    assert "Epoch 3/3" in out  # fit's per-epoch lines


def test_vae_losses_hold_the_kl_term(vae_module):
    lm.random.set_seed(0)
    x = vae_module.load_data()[:16]
    vae = vae_module.VariationalAutoEncoder(64, 64, 32)
    assert vae.losses == []
    reconstructed = vae(x)
    assert reconstructed.shape == (16, 64)
    assert bool(jnp.all((reconstructed >= 0) & (reconstructed <= 1)))  # sigmoid output
    assert len(vae.losses) == 1
    # Recompute the KL divergence from the encoder's outputs: z_mean and z_log_var do not
    # depend on the sampling noise, so the value is reproducible.
    z_mean, z_log_var, z = vae.encoder(x)
    expected = -0.5 * jnp.mean(z_log_var - z_mean**2 - jnp.exp(z_log_var) + 1)
    np.testing.assert_allclose(float(vae.losses[0]), float(expected), rtol=1e-5)
    assert float(vae.losses[0]) >= 0.0  # a KL divergence
    # Losses are reset at each outermost call, not accumulated.
    vae(x)
    assert len(vae.losses) == 1


def test_vae_sampling_draws_new_noise_each_call(vae_module):
    lm.random.set_seed(0)
    sampling = vae_module.Sampling()
    z_mean, z_log_var = jnp.zeros((4, 2)), jnp.zeros((4, 2))
    first, second = sampling((z_mean, z_log_var)), sampling((z_mean, z_log_var))
    assert first.shape == (4, 2)
    assert not np.allclose(first, second)  # the seed generator advances
    assert len(sampling.variables) == 1 and sampling.weights == []  # its state, not a weight


def test_convnet_learns_and_prints_its_summary(capsys):
    convnet = load_example("convnet_digits")
    accuracy = convnet.main(epochs=3, seed=0, verbose=1)
    assert accuracy >= 0.8  # chance is 10%; 3 epochs reach ~96%, the full 30 ~98%
    out = capsys.readouterr().out
    for layer_type in ("Conv2D", "MaxPooling2D", "Flatten", "Dropout", "Dense"):
        assert f"({layer_type})" in out
    assert "(None, 8, 8, 16)" in out and "(None, 4, 4, 32)" in out
    assert "Total params: 9,930" in out
    assert "Epoch 3/3" in out and "val_accuracy" in out
    assert f"held-out accuracy: {accuracy:.2%}" in out
