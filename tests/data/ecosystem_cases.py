"""Shared cases for the tests of data from other libraries (tests/data/test_ecosystem_*.py).

Each case trains, evaluates and predicts with the same seeded model twice: once on NumPy
arrays (the reference, computed once per session) and once on the same data in another
library's object; the numbers must agree to 1e-6.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

import lamina as lm

N, BATCH = 22, 4  # 5 full batches and a partial one of 2: a block of 4 fits, with leftovers
_rng = np.random.default_rng(0)
X = _rng.normal(size=(N, 3)).astype(np.float32)
XB = _rng.normal(size=(N, 2)).astype(np.float32)
Y = (_rng.random((N, 1)) > 0.5).astype(np.float32)
W = _rng.uniform(0.5, 2.0, size=N).astype(np.float32)
VAL = slice(0, 7)  # validation rows: one full batch and a partial one

# name -> what fit gets besides the data; "data" says which arrays make the batches.
CASES = {
    # sample weights, validation data, a partial last batch, blocks of 4 stacked
    "weighted_spe4": dict(data="xyw", fit=dict(epochs=2), steps_per_execution=4),
    "weighted_spe1": dict(data="xyw", fit=dict(epochs=2), steps_per_execution=1),
    "dict_inputs": dict(data="dict", fit=dict(epochs=1)),  # steps_per_execution "auto"
    # epochs that stop inside a pass and carry on, the next pass's epoch cut short
    "steps_class_weight": dict(
        data="xy", fit=dict(epochs=3, steps_per_epoch=4, class_weight={0: 0.5, 1: 3.0})
    ),
    "shuffled": dict(data="xyw", fit=dict(epochs=2, shuffle=True)),  # sources of samples only
    "shuffled_batches": dict(data="xy", fit=dict(epochs=2, shuffle="batch")),
}
BATCH_SOURCE_CASES = ["weighted_spe4", "weighted_spe1", "dict_inputs", "steps_class_weight"]
SAMPLE_SOURCE_CASES = BATCH_SOURCE_CASES + ["shuffled"]


def arrays(kind: str, rows=slice(None)):
    """The (x, y, sample_weight) arrays of a case's data, restricted to ``rows``."""
    x = {"a": X[rows], "b": XB[rows]} if kind == "dict" else X[rows]
    return x, Y[rows], (W[rows] if kind == "xyw" else None)


def make_model(two_inputs: bool, steps_per_execution="auto"):
    """The seeded model of a case, shared by every run (so that its steps compile once per
    session): weights and optimizer state are put back to their first values each time."""
    model, weights, slots = _first_state(two_inputs, steps_per_execution)
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, slots):
        variable.assign(value)
    lm.random.set_seed(7)  # shuffling draws from the seeded NumPy generator
    return model


@functools.cache
def _first_state(two_inputs: bool, steps_per_execution):
    model = _new_model(two_inputs, steps_per_execution)
    model.optimizer.build(model.trainable_variables)
    weights = [np.array(w) for w in model.get_weights()]
    return model, weights, [np.array(v) for v in model.optimizer.variables]


def _new_model(two_inputs: bool, steps_per_execution):
    lm.random.set_seed(7)
    if two_inputs:
        a, b = lm.Input((3,), name="a"), lm.Input((2,), name="b")
        hidden = lm.layers.Dense(4, activation="tanh")(lm.layers.Concatenate()([a, b]))
        model = lm.Model({"a": a, "b": b}, lm.layers.Dense(1)(hidden))
    else:
        model = lm.Sequential(
            [lm.Input((3,)), lm.layers.Dense(4, activation="tanh"), lm.layers.Dense(1)]
        )
    model.compile(
        lm.optimizers.SGD(0.1), "mse", metrics=["mae"], steps_per_execution=steps_per_execution
    )
    return model


def run(case: str, source):
    """Fit (with validation data), evaluate and predict on ``source(x, y, sw)``, the data as
    the library under test gives it; returns every number the loops produced."""
    spec = CASES[case]
    kind = spec["data"]
    model = make_model(kind == "dict", spec.get("steps_per_execution", "auto"))
    fit = dict(spec["fit"])
    fit.setdefault("shuffle", False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        history = model.fit(
            **source(*arrays(kind)),
            validation_data=_as_validation(source(*arrays(kind, VAL))),
            batch_size=BATCH,
            verbose=0,
            **fit,
        )
    evaluated = model.evaluate(**source(*arrays(kind)), batch_size=BATCH, verbose=0, return_dict=True)
    x_only = source(arrays(kind)[0], None, None)
    predicted = model.predict(x_only["x"], batch_size=BATCH, verbose=0)
    return {
        "history": history.history,
        "weights": [np.array(w) for w in model.get_weights()],
        "evaluate": evaluated,
        "predict": predicted,
    }


def _as_validation(kwargs: dict):
    """``validation_data``: the library's object itself, or the arrays as a tuple."""
    if len(kwargs) == 1:
        return kwargs["x"]
    return tuple(kwargs[k] for k in ("x", "y", "sample_weight") if kwargs.get(k) is not None)


def array_source(x, y, sw):
    return {"x": x, "y": y, "sample_weight": sw}


@functools.cache
def reference(case: str):
    return run(case, array_source)


def assert_same(got: dict, case: str) -> None:
    want = reference(case)
    assert got["history"].keys() == want["history"].keys()
    for key in want["history"]:
        np.testing.assert_allclose(got["history"][key], want["history"][key], rtol=1e-6, atol=1e-6, err_msg=key)
    for g, w in zip(got["weights"], want["weights"]):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    assert got["evaluate"].keys() == want["evaluate"].keys()
    for key in want["evaluate"]:
        np.testing.assert_allclose(got["evaluate"][key], want["evaluate"][key], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got["predict"], want["predict"], rtol=1e-6, atol=1e-6)
