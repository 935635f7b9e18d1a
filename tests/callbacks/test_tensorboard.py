"""``lm.callbacks.TensorBoard``: the event files are read back (tbparse) and their tags, steps
and values compared with ``history.history`` and with the losses a per-batch callback saw.

Keras's own callback needs TensorFlow to write anything, so the reference values come from
lamina's logs, which other tests compare with Keras.
"""

import glob
import os
import sys

import numpy as np
import pytest

import lamina as lm

tbparse = pytest.importorskip("tbparse")


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32") + 0.1).astype("float32")
    return x, y


def _model(learning_rate=0.05, steps_per_execution="auto", metrics=("mae",)):
    lm.random.set_seed(1)
    model = lm.Sequential([lm.Input((4,)), lm.layers.Dense(3, activation="relu"), lm.layers.Dense(1)])
    model.compile(lm.optimizers.SGD(learning_rate), "mse", metrics=list(metrics),
                  steps_per_execution=steps_per_execution)
    return model


def _scalars(log_dir, run):
    frame = tbparse.SummaryReader(os.path.join(log_dir, run)).scalars
    return {tag: (list(group["step"]), list(group["value"]))
            for tag, group in frame.sort_values("step").groupby("tag")}


def test_epoch_scalars_equal_history_with_validation_and_learning_rate(tmp_path):
    x, y = _data()
    model = _model()
    log_dir = str(tmp_path / "logs")
    schedule = lm.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    history = model.fit(x[:32], y[:32], batch_size=8, epochs=2, verbose=0, shuffle=False,
                        validation_data=(x[32:], y[32:]),
                        callbacks=[schedule, lm.callbacks.TensorBoard(log_dir)])
    train, validation = _scalars(log_dir, "train"), _scalars(log_dir, "validation")

    assert set(train) == {"epoch_loss", "epoch_mae", "epoch_learning_rate"}
    for name in ("loss", "mae"):
        steps, values = train[f"epoch_{name}"]
        assert steps == [0, 1]
        np.testing.assert_allclose(values, history.history[name], rtol=1e-6)
        steps, values = validation[f"epoch_{name}"]
        assert steps == [0, 1]
        np.testing.assert_allclose(values, history.history[f"val_{name}"], rtol=1e-6)
    # The rate in force during each epoch (the scheduler set it at the epoch's start).
    np.testing.assert_allclose(train["epoch_learning_rate"][1], [0.1, 0.05], rtol=1e-6)
    # After each validation, the values against optimizer.iterations (4 batches per epoch).
    steps, values = validation["evaluation_loss_vs_iterations"]
    assert steps == [4, 8]
    np.testing.assert_allclose(values, history.history["val_loss"], rtol=1e-6)


def _batch_losses(x, y, epochs, batch_size):
    """Every batch's running loss as a per-batch callback sees it (one step per call)."""
    model = _model(steps_per_execution=1)
    losses = []
    record = lm.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"])))
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=False, callbacks=[record])
    return losses


@pytest.mark.parametrize("steps_per_execution", [1, "auto", 4])
def test_every_batch_is_written_also_inside_a_compiled_block(tmp_path, steps_per_execution):
    # 65 samples in batches of 2: 32 full ones and a partial one, so that "auto" runs blocks
    # (two steps per call) and 4 leaves a tail of single steps.
    x, y = _data(65)
    expected = _batch_losses(x, y, epochs=2, batch_size=2)
    model = _model(steps_per_execution=steps_per_execution)
    log_dir = str(tmp_path / "logs")
    callback = lm.callbacks.TensorBoard(log_dir, update_freq="batch", write_steps_per_second=True)
    # Batch-level logging does not make "auto" fall back to one step per call.
    assert not lm.callbacks.CallbackList([callback]).needs_batch_hooks("train")
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, shuffle=False, callbacks=[callback])
    train = _scalars(log_dir, "train")

    steps, values = train["batch_loss"]
    assert steps == list(range(1, 67))  # 33 batches per epoch, counted on across epochs
    np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert train["batch_mae"][0] == steps
    assert train["batch_steps_per_second"][0] == steps
    assert all(v > 0 for v in train["batch_steps_per_second"][1])
    assert train["epoch_steps_per_second"][0] == [0, 1]
    assert all(v > 0 for v in train["epoch_steps_per_second"][1])


def test_integer_update_freq_writes_every_nth_batch(tmp_path):
    x, y = _data(20)
    expected = _batch_losses(x, y, epochs=2, batch_size=4)
    model = _model(steps_per_execution=4)
    log_dir = str(tmp_path / "logs")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False,
              callbacks=[lm.callbacks.TensorBoard(log_dir, update_freq=3)])
    steps, values = _scalars(log_dir, "train")["batch_loss"]
    assert steps == [3, 6, 9]
    np.testing.assert_allclose(values, [expected[2], expected[5], expected[8]], rtol=1e-5)


def test_histograms_of_every_weight_every_histogram_freq_epochs(tmp_path):
    x, y = _data(16)
    model = _model()
    log_dir = str(tmp_path / "logs")
    model.fit(x, y, batch_size=8, epochs=3, verbose=0,
              callbacks=[lm.callbacks.TensorBoard(log_dir, histogram_freq=2, write_images=True)])
    reader = tbparse.SummaryReader(os.path.join(log_dir, "train"))
    histograms = reader.histograms
    paths = [w.path for w in model.weights]
    assert sorted(set(histograms["tag"])) == sorted(f"{p}/histogram" for p in paths)
    for weight in model.weights:
        rows = histograms[histograms["tag"] == f"{weight.path}/histogram"].sort_values("step")
        assert list(rows["step"]) == [0, 2]
        # The last histogram counts every entry of the final weight, within its range.
        counts, limits = rows["counts"].iloc[-1], rows["limits"].iloc[-1]
        value = np.asarray(weight)
        assert np.sum(counts) == value.size
        assert limits[-1] >= value.max()
    # tbparse needs TensorFlow for images: TensorBoard's own reader lists them.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(os.path.join(log_dir, "train"), size_guidance={"images": 0}).Reload()
    # As Keras: no image of a weight with one entry (the output layer's bias).
    pictured = [w.path for w in model.weights if np.squeeze(np.asarray(w)).ndim >= 1]
    assert len(pictured) == 3
    assert sorted(events.Tags()["images"]) == sorted(f"{p}/image" for p in pictured)
    kernel = events.Images(f"{paths[0]}/image")
    assert [e.step for e in kernel] == [0, 2]
    assert (kernel[0].width, kernel[0].height) == (4, 3)  # the (4, 3) kernel, shown wider than tall
    # The summary of the built model, as text, for the first batch.
    text = reader.text
    assert list(text["tag"]) == ["model_summary"]
    assert "dense_" in text["value"].iloc[0] and "Total params: 19" in text["value"].iloc[0]


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_profile_batch_range_writes_a_jax_trace(tmp_path, steps_per_execution):
    # With 4 steps per call, batches 2-3 run inside the first call, which is traced.
    x, y = _data(16)
    model = _model(steps_per_execution=steps_per_execution)
    log_dir = str(tmp_path / "logs")
    callback = lm.callbacks.TensorBoard(log_dir, profile_batch=(2, 3), write_graph=False)
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[callback])
    traces = glob.glob(os.path.join(log_dir, "train", "plugins", "profile", "*", "*.xplane.pb"))
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 0  # one trace per fit, as Keras
    assert not callback._tracing


def test_evaluate_writes_its_results_against_iterations(tmp_path):
    x, y = _data(16)
    model = _model()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    log_dir = str(tmp_path / "logs")
    results = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True,
                             callbacks=[lm.callbacks.TensorBoard(log_dir)])
    validation = _scalars(log_dir, "validation")
    assert set(validation) == {"evaluation_loss_vs_iterations", "evaluation_mae_vs_iterations"}
    assert validation["evaluation_loss_vs_iterations"][0] == [4]
    np.testing.assert_allclose(validation["evaluation_mae_vs_iterations"][1], [results["mae"]], rtol=1e-6)


def test_missing_tensorboardx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # makes `import tensorboardX` fail
    with pytest.raises(ImportError, match=r'pip install "lamina\[tensorboard\]"'):
        lm.callbacks.TensorBoard("logs")


@pytest.mark.parametrize("kwargs, message", [
    ({"update_freq": "step"}, r'update_freq must be "epoch", "batch" or an integer >= 1.*\'step\''),
    ({"update_freq": 0}, r"update_freq must be .* got 0"),
    ({"profile_batch": (3, 2)}, r"profile_batch must be .* got \(3, 2\)"),
    ({"profile_batch": -1}, r"profile_batch must be .* got -1"),
    ({"histogram_freq": -1}, r"histogram_freq must be an integer >= 0.* got -1"),
    ({"embeddings_freq": 0.5}, r"embeddings_freq must be an integer >= 0.* got 0.5"),
    ({"embeddings_metadata": 3}, r"embeddings_metadata must be a file path or a dict"),
])
def test_unusable_arguments_are_refused_clearly(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        lm.callbacks.TensorBoard(str(tmp_path), **kwargs)


def test_update_freq_epoch_writes_no_batch_scalars_and_profile_string_form(tmp_path):
    x, y = _data(16)
    model = _model(steps_per_execution=4)
    log_dir = str(tmp_path / "logs")
    callback = lm.callbacks.TensorBoard(log_dir, profile_batch="0")
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[callback])
    assert set(_scalars(log_dir, "train")) == {"epoch_loss", "epoch_mae", "epoch_learning_rate"}
    assert not os.path.exists(os.path.join(log_dir, "train", "plugins"))


def _embedding_model():
    lm.random.set_seed(2)
    model = lm.Sequential([lm.Input((3,), dtype="int32"), lm.layers.Embedding(5, 2, name="words"),
                           lm.layers.Flatten(), lm.layers.Dense(1)])
    model.compile("sgd", "mse")
    return model


def test_embeddings_are_written_for_the_projector_with_their_labels(tmp_path):
    x = np.arange(12, dtype="int32").reshape(4, 3) % 5
    y = np.ones((4, 1), "float32")
    labels = tmp_path / "labels.tsv"
    labels.write_text("name\tkind\n" + "".join(f"w{i}\tk{i % 2}\n" for i in range(5)))
    model = _embedding_model()
    log_dir = tmp_path / "logs"
    model.fit(x, y, epochs=3, verbose=0, callbacks=[lm.callbacks.TensorBoard(
        str(log_dir), embeddings_freq=2, embeddings_metadata={"words": str(labels)})])
    config = (log_dir / "train" / "projector_config.pbtxt").read_text()
    assert config.count("embeddings {") == 2  # epochs 0 and 2
    [last] = sorted(glob.glob(str(log_dir / "train" / "00002" / "*" / "tensors.tsv")))
    table = np.loadtxt(last, delimiter="\t")
    np.testing.assert_allclose(table, np.asarray(model.get_layer("words").embeddings), rtol=1e-6)
    metadata = open(os.path.join(os.path.dirname(last), "metadata.tsv")).read().splitlines()
    assert metadata[0] == "name\tkind" and metadata[1:] == [f"w{i}\tk{i % 2}" for i in range(5)]


def test_embeddings_metadata_errors_name_the_layer(tmp_path):
    x, y = np.zeros((2, 3), "int32"), np.zeros((2, 1), "float32")
    labels = tmp_path / "labels.tsv"
    labels.write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"'words' has 2 lines; the layer has 5 rows"):
        _embedding_model().fit(x, y, verbose=0, callbacks=[lm.callbacks.TensorBoard(
            str(tmp_path / "a"), embeddings_freq=1, embeddings_metadata=str(labels))])
    with pytest.raises(ValueError, match=r"names \['wrods'\], which are not Embedding layers.*\['words'\]"):
        _embedding_model().fit(x, y, verbose=0, callbacks=[lm.callbacks.TensorBoard(
            str(tmp_path / "b"), embeddings_freq=1, embeddings_metadata={"wrods": str(labels)})])
