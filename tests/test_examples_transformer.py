"""The Transformer classifier example runs at CI size and shows what it promises: it learns an
order-dependent rule well above chance, and the padding mask from ``Embedding(mask_zero=True)``
reaches ``MultiHeadAttention`` and the pooling, so appending padding leaves the output alone."""

import importlib.util
from pathlib import Path

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
def transformer_module():
    return load_example("transformer_classifier")


def test_transformer_imports_without_side_effects(capsys):
    load_example("transformer_classifier")
    assert capsys.readouterr().out == ""


def test_transformer_data_is_padded_balanced_and_order_dependent(transformer_module):
    m = transformer_module
    ids, labels = m.make_data(2000, seed=0)
    assert ids.shape == (2000, m.SEQUENCE_LENGTH) and ids.dtype == np.int32
    assert 0.45 < labels.mean() < 0.55
    lengths = (ids != 0).sum(axis=1)
    assert lengths.min() >= 4 and (lengths < m.SEQUENCE_LENGTH).mean() > 0.5   # most are padded
    for row, length, label in zip(ids, lengths, labels):
        assert (row[:length] != 0).all() and (row[length:] == 0).all()       # right-padded
        assert (row == m.FIRST).sum() == 1 and (row == m.SECOND).sum() == 1
        assert label == int(np.argmax(row == m.FIRST) < np.argmax(row == m.SECOND))


def test_transformer_learns_the_order_rule(transformer_module, capsys):
    # Reaches ~99% held-out accuracy after 6 epochs (chance is 50%).
    accuracy = transformer_module.main(epochs=6, seed=0, verbose=1)
    assert accuracy > 0.85
    out = capsys.readouterr().out
    assert "MultiHeadAttention" in out and "PositionEmbedding" in out   # the summary
    assert "Epoch 6/6" in out and "held-out accuracy" in out


def test_padding_mask_reaches_attention_and_pooling(transformer_module, monkeypatch):
    m = transformer_module
    lm.random.set_seed(0)
    model = m.build_model()
    ids, _ = m.make_data(8, seed=3)
    received = {}
    for name in ("attention", "pool"):
        layer = model.get_layer(name)
        original = layer.call

        def spy(*args, _name=name, _original=original, **kwargs):
            from lamina.layers.masking import get_mask
            received[_name] = kwargs.get("mask", get_mask(args[0]))
            return _original(*args, **kwargs)

        monkeypatch.setattr(layer, "call", spy)
    model(ids)
    for name in ("attention", "pool"):
        assert received[name] is not None, f"{name} got no mask"
        np.testing.assert_array_equal(np.asarray(received[name]), ids != 0)


def test_appending_padding_leaves_the_output_unchanged(transformer_module, monkeypatch):
    m = transformer_module
    lm.random.set_seed(0)
    model = m.build_model()
    ids, _ = m.make_data(16, seed=4)
    longer = np.pad(ids, ((0, 0), (0, 8)))          # 8 more padding steps
    np.testing.assert_allclose(model.predict(ids, verbose=0), model.predict(longer, verbose=0),
                               atol=1e-5)
    # The check has teeth: without the mask the padding steps change the output.
    embedding = model.get_layer("tokens")
    monkeypatch.setattr(embedding, "compute_mask", lambda inputs, mask=None: None)
    unmasked_short, unmasked_long = np.asarray(model(ids)), np.asarray(model(longer))
    assert np.abs(unmasked_short - unmasked_long).max() > 1e-3
