"""Several outputs: ``y``, ``loss``, ``loss_weights``, ``metrics``, ``weighted_metrics`` and
``sample_weight`` given as dicts are matched to the outputs by output name (Keras 3's rule),
lists by position, and a single loss applies to every output; the logs, ``metrics_names`` and
``evaluate()``'s list follow Keras 3. Numbers are compared with Keras 3 on the same weights."""

import numpy as np
import pytest

import lamina as lm

N = 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 4)).astype("float32")
    yz = rng.normal(size=(N, 2)).astype("float32")
    ya = rng.normal(size=(N, 1)).astype("float32")
    sw = rng.uniform(0.2, 2.0, size=(N,)).astype("float32")
    return x, yz, ya, sw


def _ours(z_units=2, a_units=1, dict_outputs=False):
    lm.random.set_seed(0)
    inputs = lm.Input(shape=(4,), name="x")
    hidden = lm.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    z = lm.layers.Dense(z_units, name="z_out")(hidden)
    a = lm.layers.Dense(a_units, name="a_out")(hidden)
    return lm.Model(inputs, {"zk": z, "ak": a} if dict_outputs else [z, a])


def _theirs(keras, ours, z_units=2, a_units=1, dict_outputs=False):
    inputs = keras.Input(shape=(4,), name="x")
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    z = keras.layers.Dense(z_units, name="z_out")(hidden)
    a = keras.layers.Dense(a_units, name="a_out")(hidden)
    model = keras.Model(inputs, {"zk": z, "ak": a} if dict_outputs else [z, a])
    model.set_weights(ours.get_weights())
    return model


def _close(ours: dict, theirs: dict):
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        np.testing.assert_allclose(np.asarray(ours[key]), np.asarray(theirs[key]), rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def _same_weights(ours, theirs):
    for mine, keras_weight in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, np.asarray(keras_weight), rtol=1e-5, atol=1e-6)


# -- output names --------------------------------------------------------------------------


def test_output_names_are_the_output_layers_names_as_in_keras(keras):
    ours = _ours()
    assert ours.output_names == ["z_out", "a_out"] == _theirs(keras, ours).output_names
    # A dict output lists its layers in sorted-key order, as Keras's flattening does.
    ours = _ours(dict_outputs=True)
    assert ours.output_names == ["a_out", "z_out"] == _theirs(keras, ours, dict_outputs=True).output_names


def test_sequential_output_names_is_its_last_layer_and_subclassed_models_have_none():
    model = lm.Sequential([lm.layers.Dense(3, name="first"), lm.layers.Dense(1, name="score")])
    assert model.output_names == ["score"]
    assert lm.Sequential().output_names == []

    class Sub(lm.Model):
        def call(self, x):
            return x

    assert not hasattr(Sub(), "output_names")  # as in Keras: only position identifies outputs


# -- dicts by name --------------------------------------------------------------------------


def test_dict_targets_train_each_output_on_its_own_target():
    # Two heads of the same shape: pairing the dict in its own (sorted) key order would train
    # each head on the other's target with no error at all.
    lm.random.set_seed(0)
    inputs = lm.Input(shape=(3,))
    z = lm.layers.Dense(1, name="z_out")(inputs)
    a = lm.layers.Dense(1, name="a_out")(inputs)
    model = lm.Model(inputs, [z, a])
    model.compile(lm.optimizers.SGD(0.2), loss="mse")
    x = np.zeros((8, 3), "float32")  # only the biases learn: each converges to its target
    model.fit(x, {"a_out": np.full((8, 1), -2.0, "float32"), "z_out": np.full((8, 1), 3.0, "float32")},
              epochs=40, batch_size=8, verbose=0)
    z_pred, a_pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(z_pred, 3.0, atol=1e-2)
    np.testing.assert_allclose(a_pred, -2.0, atol=1e-2)


def test_losses_weights_metrics_and_targets_by_name_match_keras(keras, data):
    x, yz, ya, _ = data
    args = dict(loss={"a_out": "mae", "z_out": "mse"}, loss_weights={"a_out": 2.0, "z_out": 0.5},
                metrics={"a_out": ["mae"], "z_out": "mse"})
    ours = _ours()
    theirs = _theirs(keras, ours)
    ours.compile(lm.optimizers.SGD(0.1), **args)
    theirs.compile(keras.optimizers.SGD(0.1), **args)
    y = {"a_out": ya, "z_out": yz}  # the opposite order from the outputs

    ours_history = ours.fit(x, y, epochs=2, batch_size=N, verbose=0).history
    theirs_history = theirs.fit(x, y, epochs=2, batch_size=N, verbose=0).history
    assert sorted(ours_history) == ["a_out_loss", "a_out_mae", "loss", "z_out_loss", "z_out_mse"]
    _close(ours_history, theirs_history)
    _same_weights(ours, theirs)

    # evaluate()'s list is in Keras's order, and metrics_names names its entries.
    ours_list = ours.evaluate(x, y, batch_size=N, verbose=0)
    np.testing.assert_allclose(ours_list, theirs.evaluate(x, y, batch_size=N, verbose=0), rtol=1e-5)
    assert ours.metrics_names == ["loss", "z_out_loss", "a_out_loss", "a_out_mae", "z_out_mse"]
    ours_dict = ours.evaluate(x, y, batch_size=N, verbose=0, return_dict=True)
    assert ours_list == [ours_dict[name] for name in ours.metrics_names]

    _close(ours.test_on_batch(x, y, return_dict=True), theirs.test_on_batch(x, y, return_dict=True))
    _close(ours.train_on_batch(x, y, return_dict=True), theirs.train_on_batch(x, y, return_dict=True))
    _same_weights(ours, theirs)
    z_pred, a_pred = ours.predict(x, verbose=0)
    theirs_z, theirs_a = theirs.predict(x, verbose=0)
    np.testing.assert_allclose(z_pred, theirs_z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a_pred, theirs_a, rtol=1e-5, atol=1e-6)


def test_lists_by_position_and_one_loss_for_every_output_match_keras(keras, data):
    x, yz, ya, _ = data
    reference = _ours()
    theirs = _theirs(keras, reference)
    theirs.compile(keras.optimizers.SGD(0.1), loss="mse", metrics=[["mae"], ["mse", "mae"]])
    want = theirs.fit(x, [yz, ya], epochs=1, batch_size=N, verbose=0).history
    assert sorted(want) == ["a_out_loss", "a_out_mae", "a_out_mse", "loss", "z_out_loss", "z_out_mae"]

    for loss, y in (("mse", [yz, ya]), ("mse", {"a_out": ya, "z_out": yz}), (["mse", "mse"], (yz, ya))):
        ours = _ours()
        ours.compile(lm.optimizers.SGD(0.1), loss=loss, metrics=[["mae"], ["mse", "mae"]])
        _close(ours.fit(x, y, epochs=1, batch_size=N, verbose=0).history, want)
        _same_weights(ours, theirs)


def test_loss_weights_as_a_list_follow_the_outputs_positions(data):
    x, yz, ya, _ = data
    by_name, by_position = _ours(), _ours()
    by_name.compile("sgd", loss=["mse", "mae"], loss_weights={"a_out": 3.0, "z_out": 0.25})
    by_position.compile("sgd", loss=["mse", "mae"], loss_weights=[0.25, 3.0])
    logs = by_position.evaluate(x, [yz, ya], verbose=0, return_dict=True)
    assert by_name.evaluate(x, [yz, ya], verbose=0, return_dict=True) == pytest.approx(logs)
    assert logs["loss"] == pytest.approx(0.25 * logs["z_out_loss"] + 3.0 * logs["a_out_loss"], rel=1e-5)


def test_dict_outputs_are_matched_by_their_keys_as_in_keras(keras, data):
    x, yz, ya, _ = data
    args = dict(loss={"zk": "mse", "ak": "mae"}, loss_weights={"zk": 1.5, "ak": 0.5},
                metrics={"ak": "mse"})
    ours = _ours(dict_outputs=True)
    theirs = _theirs(keras, ours, dict_outputs=True)
    ours.compile(lm.optimizers.SGD(0.1), **args)
    theirs.compile(keras.optimizers.SGD(0.1), **args)
    y = {"zk": yz, "ak": ya}
    ours_history = ours.fit(x, y, epochs=1, batch_size=N, verbose=0).history
    assert sorted(ours_history) == ["ak_loss", "ak_mse", "loss", "zk_loss"]
    _close(ours_history, theirs.fit(x, y, epochs=1, batch_size=N, verbose=0).history)
    _same_weights(ours, theirs)
    np.testing.assert_allclose(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0), rtol=1e-5)
    assert sorted(ours.predict(x, verbose=0)) == ["ak", "zk"]


def test_metric_names_repeat_and_weighted_names_follow_keras(keras, data):
    # Repeated names get _1; a weighted metric named like a plain one becomes weighted_<name>.
    x, yz, ya, sw = data
    args = dict(loss=["mse", "mae"], metrics=[None, ["mae", "mae"]], weighted_metrics=[None, ["mae"]])
    ours = _ours()
    theirs = _theirs(keras, ours)
    ours.compile("sgd", **args)
    theirs.compile("sgd", **args)
    want = theirs.evaluate(x, [yz, ya], sample_weight=sw, verbose=0, return_dict=True)
    assert sorted(want) == ["a_out_loss", "a_out_mae", "a_out_mae_1", "a_out_weighted_mae", "loss", "z_out_loss"]
    _close(ours.evaluate(x, [yz, ya], sample_weight=sw, verbose=0, return_dict=True), want)
    np.testing.assert_allclose(ours.evaluate(x, [yz, ya], sample_weight=sw, verbose=0),
                               theirs.evaluate(x, [yz, ya], sample_weight=sw, verbose=0), rtol=1e-5)


def test_sample_weights_by_name_and_by_position_match_keras(keras, data):
    x, yz, ya, sw = data
    args = dict(loss=["mse", "mae"], weighted_metrics={"z_out": "mse"})
    ours = _ours()
    theirs = _theirs(keras, ours)
    ours.compile("sgd", **args)
    theirs.compile("sgd", **args)
    ones = np.ones(N, "float32")
    # Keras takes per-output weights as a list; a dict keyed by output name means the same.
    want = theirs.evaluate(x, [yz, ya], sample_weight=[sw, ones], verbose=0, return_dict=True)
    _close(ours.evaluate(x, [yz, ya], sample_weight=[sw, ones], verbose=0, return_dict=True), want)
    y, weights = {"a_out": ya, "z_out": yz}, {"a_out": ones, "z_out": sw}
    _close(ours.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True), want)


def test_single_output_logs_no_output_prefix_and_metrics_names_in_compile_order(keras, data):
    x, yz, _, _ = data
    lm.random.set_seed(0)
    inputs = lm.Input(shape=(4,))
    ours = lm.Model(inputs, lm.layers.Dense(2, name="z_out")(inputs))
    ours.compile("sgd", loss={"z_out": "mse"}, metrics=["mse", "mae"])
    k_inputs = keras.Input(shape=(4,))
    theirs = keras.Model(k_inputs, keras.layers.Dense(2, name="z_out")(k_inputs))
    theirs.set_weights(ours.get_weights())
    theirs.compile("sgd", loss="mse", metrics=["mse", "mae"])
    got = ours.evaluate(x, {"z_out": yz}, verbose=0)
    np.testing.assert_allclose(got, theirs.evaluate(x, yz, verbose=0), rtol=1e-5)
    assert ours.metrics_names == ["loss", "mse", "mae"]


def test_sequential_loss_keyed_by_its_last_layer():
    model = lm.Sequential([lm.layers.Dense(2, name="score")])
    model.compile("sgd", loss={"score": "mse"}, metrics={"score": "mae"})
    logs = model.evaluate(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, return_dict=True)
    assert sorted(logs) == ["loss", "mae"]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["loss", "loss_weights", "metrics", "weighted_metrics"])
def test_a_compile_dict_key_that_names_no_output_is_an_error_listing_the_names(argument, data):
    x, yz, ya, _ = data
    args = {"loss": "mse", argument: {"z_out": "mse" if argument != "loss_weights" else 1.0,
                                      "a_typo": "mae" if argument != "loss_weights" else 1.0}}
    model = _ours()
    model.compile("sgd", **args)
    with pytest.raises(ValueError, match=r"\['a_typo'\].*\['z_out', 'a_out'\]"):
        model.fit(x, [yz, ya], verbose=0)


def test_a_target_key_that_names_no_output_is_an_error_listing_the_names(data):
    x, yz, ya, sw = data
    model = _ours()
    model.compile("sgd", loss="mse")
    for call in (lambda y: model.fit(x, y, verbose=0), lambda y: model.evaluate(x, y, verbose=0),
                 lambda y: model.train_on_batch(x, y)):
        with pytest.raises(ValueError, match=r"y has keys \['a'\].*\['z_out', 'a_out'\]"):
            call({"a": ya, "z_out": yz})
    with pytest.raises(ValueError, match=r"sample_weight has keys \['a'\]"):
        model.compiled_loss([yz, ya], model(x), {"a": sw, "z_out": sw})


def test_a_missing_target_is_an_error_only_for_an_output_with_a_loss(data):
    x, yz, ya, _ = data
    model = _ours()
    model.compile("sgd", loss={"z_out": "mse", "a_out": "mae"})
    with pytest.raises(ValueError, match=r"output 'a_out', but y has no target"):
        model.fit(x, {"z_out": yz}, verbose=0)
    # An output without a loss needs no target: the same step as with its target given.
    partial, full = _ours(), _ours()
    partial.compile(lm.optimizers.SGD(0.1), loss={"z_out": "mse"})
    full.compile(lm.optimizers.SGD(0.1), loss={"z_out": "mse", "a_out": None})
    logs = partial.fit(x, {"z_out": yz}, batch_size=N, verbose=0).history
    want = full.fit(x, {"z_out": yz, "a_out": ya}, batch_size=N, verbose=0).history
    assert logs["loss"] == pytest.approx(want["loss"], rel=1e-6)
    assert sorted(logs) == ["loss"]  # one loss: no per-output entries, as Keras
    _same_weights(partial, full)


def test_wrong_number_of_targets_or_entries_is_an_error(data):
    x, yz, ya, _ = data
    model = _ours()
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match=r"y is a single array, but the model has 2 outputs"):
        model.fit(x, yz, verbose=0)
    model.compile("sgd", loss=["mse", "mae", "mse"])
    with pytest.raises(ValueError, match=r"loss has 3 entries, but the model has 2 outputs"):
        model.fit(x, [yz, ya], verbose=0)
    model.compile("sgd", loss="mse", metrics=["mae"])  # Keras refuses this too
    with pytest.raises(ValueError, match=r"metrics has 1 entries"):
        model.fit(x, [yz, ya], verbose=0)


def test_class_weight_with_several_outputs_is_an_error_as_in_keras(data):
    x, yz, ya, _ = data
    model = _ours()
    model.compile("sgd", loss="mse")
    with pytest.raises(ValueError, match="only supported for a single output"):
        model.fit(x, {"z_out": yz, "a_out": ya}, class_weight={0: 1.0, 1: 2.0}, verbose=0)


def test_subclassed_list_outputs_are_matched_by_position_and_refuse_dicts(data):
    x, yz, ya, _ = data

    class TwoHeads(lm.Model):
        def __init__(self):
            super().__init__()
            self.z = lm.layers.Dense(2)
            self.a = lm.layers.Dense(1)

        def call(self, x):
            return [self.z(x), self.a(x)]

    model = TwoHeads()
    model.compile("sgd", loss=["mse", "mae"])
    logs = model.evaluate(x, [yz, ya], verbose=0, return_dict=True)
    assert sorted(logs) == ["loss", "output_0_loss", "output_1_loss"]
    with pytest.raises(ValueError, match="outputs have no names"):
        model.evaluate(x, {"z": yz, "a": ya}, verbose=0)


def _keras_jax_train_step(self, state, data):
    """The Keras-on-JAX guide's ``train_step(state, data)``, reporting every metric."""
    import jax

    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y = data
    grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
    (_, (unscaled_loss, _, non_trainable, metrics_variables)), grads = grad_fn(
        trainable, non_trainable, metrics_variables, x, y, None, training=True,
        optimizer_variables=optimizer_variables)
    trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
    logs, new_metrics_variables, start = {}, [], 0
    for metric in self.metrics:
        values = metrics_variables[start:start + len(metric.variables)]
        start += len(metric.variables)
        if metric.name == "loss":
            values = metric.stateless_update_state(values, unscaled_loss)
        logs[metric.name] = metric.stateless_result(values)
        new_metrics_variables += list(values)
    return logs, (trainable, non_trainable, optimizer_variables, new_metrics_variables)


def test_per_output_losses_are_metrics_state_of_a_keras_jax_train_step(keras, data):
    # The per-output loss trackers are in model.metrics (after the compiled metrics, as in
    # Keras), so a stateless step gets and returns their state like Keras's does.
    x, yz, ya, _ = data
    ours = _ours()
    Ours = type("Ours", (lm.Model,), {"train_step": _keras_jax_train_step})
    Theirs = type("Theirs", (keras.Model,), {"train_step": _keras_jax_train_step})
    ours = Ours(ours.inputs, ours.outputs)
    theirs = _theirs(keras, ours)
    theirs = Theirs(theirs.inputs, theirs.outputs)
    args = dict(loss={"z_out": "mse", "a_out": "mae"}, loss_weights={"z_out": 1.0, "a_out": 0.5})
    ours.compile(lm.optimizers.SGD(0.1), **args)
    theirs.compile(keras.optimizers.SGD(0.1), **args)
    y = {"a_out": ya, "z_out": yz}
    got = ours.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history
    assert sorted(got) == ["a_out_loss", "loss", "z_out_loss"]
    _close(got, theirs.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0).history)
    _same_weights(ours, theirs)


def test_validation_logs_and_a_reloaded_model_keep_the_output_names(tmp_path, data):
    x, yz, ya, _ = data
    model = _ours()
    model.compile(lm.optimizers.SGD(0.1), loss={"z_out": "mse", "a_out": "mae"},
                  loss_weights={"a_out": 0.5}, metrics={"a_out": "mse"})
    y = {"a_out": ya, "z_out": yz}
    history = model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0).history
    assert sorted(history) == ["a_out_loss", "a_out_mse", "loss", "val_a_out_loss", "val_a_out_mse",
                               "val_loss", "val_z_out_loss", "z_out_loss"]
    model.save(tmp_path / "m.lamina")
    reloaded = lm.load_model(tmp_path / "m.lamina")
    want = model.evaluate(x, y, verbose=0, return_dict=True)
    _close(reloaded.evaluate(x, y, verbose=0, return_dict=True), want)
    assert reloaded.metrics_names == model.metrics_names == ["loss", "z_out_loss", "a_out_loss", "a_out_mse"]


def test_targets_for_only_the_outputs_with_a_loss_as_in_keras(keras, data):
    # Keras's short form: with loss=[None, ...], y may hold just the targets of the outputs
    # that have a loss (a list in order, or one array).
    x, yz, ya, sw = data
    reference = _ours()
    theirs = _theirs(keras, reference)
    theirs.compile(keras.optimizers.SGD(0.1), loss=[None, "mse"])
    want = theirs.fit(x, ya, epochs=1, batch_size=N, verbose=0).history
    for y in (ya, [ya], (ya,), {"a_out": ya}, [yz, ya]):
        ours = _ours()
        ours.compile(lm.optimizers.SGD(0.1), loss=[None, "mse"], metrics=[None, "mae"])
        got = ours.fit(x, y, epochs=1, batch_size=N, verbose=0).history
        np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
        _same_weights(ours, theirs)
    # The metric is computed on the target it belongs to; sample weights follow the same form.
    ours = _ours()
    ours.compile("sgd", loss=[None, "mse"], metrics=[None, "mae"], weighted_metrics=[None, "mse"])
    logs = ours.evaluate(x, [ya], sample_weight=[sw], verbose=0, return_dict=True)
    _, a_pred = ours.predict(x, verbose=0)
    assert logs["a_out_mae"] == pytest.approx(np.mean(np.abs(a_pred - ya)), rel=1e-5)
    per_sample = np.mean((a_pred - ya) ** 2, axis=-1)
    assert logs["a_out_mse"] == pytest.approx(np.sum(sw * per_sample) / np.sum(sw), rel=1e-5)
    assert logs["loss"] == pytest.approx(np.sum(sw * per_sample) / N, rel=1e-5)
    ours.compile("sgd", loss=[None, "mse"], metrics=["mae", None])
    with pytest.raises(ValueError, match=r"covers output 'z_out', but y has no target"):
        ours.evaluate(x, [ya], verbose=0)
    with pytest.raises(ValueError, match=r"covers output 'z_out', but y has no target"):
        ours.evaluate(x, [ya], verbose=0)  # again: the failed build left nothing half-made
    logs = ours.evaluate(x, [yz, ya], verbose=0, return_dict=True)  # the targets it needs
    z_pred, _ = ours.predict(x, verbose=0)
    assert logs["z_out_mae"] == pytest.approx(np.mean(np.abs(z_pred - yz)), rel=1e-5)
