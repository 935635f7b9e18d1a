"""What ``model.variables`` and its siblings list, before and after ``compile`` and ``fit``.

As in Keras 3, a model's ``variables`` / ``non_trainable_variables`` / ``weights`` hold its
layers' state only: the optimizer's state is in ``model.optimizer.variables`` and the
metrics' state (compiled metrics, loss tracker, metrics held in attributes) in
``model.metrics_variables``. The listings are compared with Keras 3 on the same models, and
saving, which keys the optimizer state explicitly, is checked to round-trip it and to read
files written before the change (``data/functional_adam_v1.lamina``, saved by the commit
before it: a Functional Dense(4) -> BatchNormalization -> Dropout -> Dense(1) model, Adam,
``mse``, metric ``mae``, two epochs of 16 samples in batches of 8).
"""

import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
import safetensors.numpy

import lamina as lm

FIXTURE = Path(__file__).parent / "data" / "functional_adam_v1.lamina"
LISTINGS = ("variables", "weights", "trainable_variables", "non_trainable_variables",
            "trainable_weights", "non_trainable_weights")


def _data(n=8, seed=0):
    rng = np.random.RandomState(seed)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def _sequential(lib):
    return lib.Sequential([
        lib.Input((3,)), lib.layers.Dense(4, name="dense"), lib.layers.BatchNormalization(name="norm"),
        lib.layers.Dropout(0.5, name="drop"), lib.layers.Dense(1, name="head"),
    ], name="seq")


def _functional(lib):
    inputs = lib.Input((3,))
    h = lib.layers.Dense(4, name="dense")(inputs)
    h = lib.layers.BatchNormalization(name="norm")(h)
    h = lib.layers.Dropout(0.5, name="drop")(h)
    return lib.Model(inputs, lib.layers.Dense(1, name="head")(h), name="func")


def _subclassed(lib, update_metric=False):
    # Attribute names equal the layer names, since lamina's paths use attribute names and
    # Keras's use layer names.
    class Sub(lib.Model):
        def __init__(self):
            super().__init__(name="sub")
            self.dense = lib.layers.Dense(4, name="dense")
            self.norm = lib.layers.BatchNormalization(name="norm")
            self.drop = lib.layers.Dropout(0.5, name="drop")
            self.head = lib.layers.Dense(1, name="head")
            self.tracker = lib.metrics.Mean(name="my_mean")  # a user metric attribute
            self.spare = lib.optimizers.SGD()  # an optimizer attribute: not layer state

        def call(self, x, training=False):
            h = self.norm(self.dense(x), training=training)
            y = self.head(self.drop(h, training=training))
            if update_metric:
                self.tracker.update_state(jnp.mean(y))
            return y

    model = Sub()
    model(np.ones((2, 3), "float32"))
    return model


def _listing(model, variables):
    """``[(path below the model, shape)]``: lamina's paths start at the model, Keras's at the
    outermost layer that existed when the variable was made (a Functional's layers have none);
    a seed generator's state is named alike in both, but Keras gives it no layer path."""
    def key(v):
        if v.name == "seed_generator_state":
            return v.name
        return v.path[len(model.name) + 1:] if v.path.startswith(model.name + "/") else v.path

    return [(key(v), tuple(v.shape)) for v in variables]


def _listings(model, with_metrics=True):
    names = LISTINGS + (("metrics_variables",) if with_metrics else ())
    return {name: _listing(model, getattr(model, name)) for name in names}


def _stages(lib, make):
    """The listings of a model built by ``make``: built, compiled, after fit, frozen."""
    model = make(lib)
    stages = {"built": _listings(model)}
    model.compile(optimizer=lib.optimizers.Adam(0.01), loss="mse",
                  metrics=[lib.metrics.MeanAbsoluteError(name="mae")])
    stages["compiled"] = _listings(model, with_metrics=False)  # Keras builds metrics in fit
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    stages["fitted"] = _listings(model)
    model.trainable = False
    stages["frozen"] = _listings(model)
    return stages


@pytest.mark.parametrize("make", [_sequential, _functional, _subclassed], ids=["sequential", "functional", "subclassed"])
def test_listings_match_keras_before_and_after_compile_and_fit(keras, make):
    ours, theirs = _stages(lm, make), _stages(keras, make)
    for stage in theirs:
        for name in theirs[stage]:
            assert ours[stage][name] == theirs[stage][name], f"{stage}: model.{name}"


def test_optimizer_and_metric_state_stay_out_of_the_model_variables_after_fit():
    model = _subclassed(lm)
    before = {name: list(getattr(model, name)) for name in LISTINGS}
    params = model.count_params()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(*_data(), batch_size=4, epochs=1, verbose=0)

    bookkeeping = {id(v) for v in [*model.optimizer.variables, *model.spare.variables,
                                   *model.metrics_variables]}
    assert len(bookkeeping) > 10  # Adam's moments, the loss tracker, mae, my_mean
    for name in LISTINGS:
        listed = getattr(model, name)
        assert not bookkeeping & {id(v) for v in listed}, f"model.{name} holds optimizer or metric state"
        assert [id(v) for v in listed] == [id(v) for v in before[name]], f"model.{name} changed in fit"
    assert model.count_params() == params
    assert len(model.get_weights()) == len(before["weights"])
    # The optimizer's and metrics' state keeps its own paths (not 'sub/adam/...').
    assert model.optimizer.iterations.path == f"{model.optimizer.name}/iterations"
    assert [v.path for v in model.tracker.variables] == ["my_mean/total", "my_mean/count"]


def test_keras_style_train_step_gets_the_state_groups_keras_gives():
    # (trainable, non_trainable, optimizer, metrics): each variable in one group only, so
    # code ported from Keras that slices or counts them finds what it found there.
    sizes = []

    class Recording(lm.Model):
        def __init__(self):
            super().__init__()
            self.dense = lm.layers.Dense(1)
            self.norm = lm.layers.BatchNormalization()

        def call(self, x, training=False):
            return self.dense(self.norm(x, training=training))

        def train_step(self, state, data):
            sizes.append([len(group) for group in state])
            trainable, non_trainable, optimizer_variables, metrics_variables = state
            x, y = data
            (loss, (y_pred, non_trainable, metrics_variables)), grads = _grad(self)(
                trainable, non_trainable, metrics_variables, x, y)
            trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
            return {"loss": loss}, (trainable, non_trainable, optimizer_variables, metrics_variables)

    model = Recording()
    model.compile(optimizer=lm.optimizers.SGD(0.1), loss="mse")
    model.fit(*_data(), batch_size=4, epochs=1, verbose=0)
    # Dense kernel and bias, gamma and beta | the moving statistics | SGD's iterations and
    # learning rate | the loss tracker's total and count.
    assert sizes and all(s == [4, 2, 2, 2] for s in sizes)
    assert int(model.optimizer.iterations) == 2


def _grad(model):
    import jax

    def loss_fn(trainable, non_trainable, metrics_variables, x, y):
        y_pred, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
        loss, (_, _, metrics_variables) = model.stateless_compute_loss(
            trainable, non_trainable, metrics_variables, x=x, y=y, y_pred=y_pred)
        return loss, (y_pred, non_trainable, metrics_variables)

    return jax.value_and_grad(loss_fn, has_aux=True)


def test_stateless_call_drops_metric_updates_of_the_call_as_keras():
    model = _subclassed(lm, update_metric=True)
    count = float(model.tracker.count.value)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    outputs, new_non_trainable = model.stateless_call(trainable, non_trainable, np.ones((2, 3), "float32"))
    assert outputs.shape == (2, 1)
    assert len(new_non_trainable) == len(non_trainable) == 3  # moving mean and variance, the seed
    assert float(model.tracker.count.value) == count


def _file_tensors(path):
    with zipfile.ZipFile(path) as archive:
        return safetensors.numpy.load(archive.read("model.safetensors"))


def _slot(optimizer, field, weight):
    return next(v for f, v, w in optimizer.state_items() if f == field and w is weight)


def test_model_file_round_trip_restores_the_optimizer_state(tmp_path):
    model = _functional(lm)
    model.compile(optimizer=lm.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    x, y = _data(16)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "m.lamina")
    loaded = lm.load_model(tmp_path / "m.lamina")

    assert int(loaded.optimizer.iterations) == 4
    pairs = list(zip(model.optimizer.state_items(), loaded.optimizer.state_items()))
    assert len(pairs) == len(model.optimizer.variables) == 15
    for (field, ours, _), (loaded_field, theirs, _) in pairs:
        assert field == loaded_field
        np.testing.assert_array_equal(np.asarray(ours.value), np.asarray(theirs.value))
    assert [v.path for v in loaded.variables] == [v.path.replace("func", loaded.name, 1) for v in model.variables]
    # Trained on from there, both take the same next step.
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(loaded.get_layer("head").kernel.numpy(), model.get_layer("head").kernel.numpy(),
                               rtol=1e-6)


def test_file_saved_before_the_change_loads_with_its_optimizer_state(tmp_path):
    tensors = _file_tensors(FIXTURE)
    model = lm.load_model(FIXTURE)
    optimizer = model.optimizer
    assert int(optimizer.iterations) == 4 == int(tensors["optimizer/iterations"])
    for layer, name in [("hidden", "kernel"), ("hidden", "bias"), ("norm", "moving_variance"), ("head", "kernel")]:
        weight = getattr(model.get_layer(layer), name)
        np.testing.assert_array_equal(weight.numpy(), tensors[f"{layer}/{name}"])
    for field in ("mu", "nu"):
        for layer in ("hidden", "head"):
            kernel = model.get_layer(layer).kernel
            np.testing.assert_array_equal(np.asarray(_slot(optimizer, field, kernel).value),
                                          tensors[f"optimizer/{field}/{layer}/kernel"])
    # The optimizer and metrics are no part of the loaded model's variables, and a file
    # saved now holds exactly the keys of the old one.
    assert {v.path.split("/", 1)[1] for v in model.variables} == {
        key for key in tensors if not key.startswith("optimizer/")}
    model.save(tmp_path / "again.lamina")
    assert set(_file_tensors(tmp_path / "again.lamina")) == set(tensors)
    model.fit(*_data(8), batch_size=8, epochs=1, verbose=0)
    assert int(optimizer.iterations) == 5


def test_weights_file_round_trip_of_a_subclassed_model_with_a_metric_attribute(tmp_path):
    model = _subclassed(lm)
    model.compile(optimizer="adam", loss="mse")
    model.fit(*_data(), batch_size=4, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.safetensors")
    keys = set(safetensors.numpy.load_file(tmp_path / "w.safetensors"))
    assert {k for k in keys if not k.startswith("optimizer/")} == {
        "dense/kernel", "dense/bias", "norm/gamma", "norm/beta", "norm/moving_mean", "norm/moving_variance",
        "drop/seed_generator_state", "head/kernel", "head/bias"}

    copy = _subclassed(lm)
    copy.compile(optimizer="adam", loss="mse")
    copy.load_weights(tmp_path / "w.safetensors")
    for ours, theirs in zip(model.variables, copy.variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert int(copy.optimizer.iterations) == 2
    for field, variable, weight in model.optimizer.state_items():
        if weight is not None:
            twin = copy.variables[[id(v) for v in model.variables].index(id(weight))]
            np.testing.assert_array_equal(np.asarray(variable.value), np.asarray(_slot(copy.optimizer, field, twin).value))
