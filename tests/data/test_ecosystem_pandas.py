"""pandas DataFrame / Series as x, y and sample_weight give the numbers of the same arrays."""

import numpy as np
import pytest

from tests.data.ecosystem_cases import BATCH, X, Y, assert_same, make_model, run

pd = pytest.importorskip("pandas")


def pandas_source(x, y, sw):
    frame = {k: pd.DataFrame(v) for k, v in x.items()} if isinstance(x, dict) else pd.DataFrame(x)
    return {
        "x": frame,
        "y": None if y is None else pd.Series(y[:, 0]),
        "sample_weight": None if sw is None else pd.Series(sw, index=np.arange(len(sw))[::-1]),
    }


@pytest.mark.parametrize("case", ["weighted_spe4", "dict_inputs"])
def test_numbers_equal_arrays(case):
    # The weights' index runs backwards: rows are taken by position, as in Keras.
    assert_same(run(case, pandas_source), case)


def test_mixed_numeric_columns_become_one_float32_matrix():
    from lamina.data import get_data_adapter

    frame = pd.DataFrame(
        {"n": np.arange(5), "f": np.linspace(0, 1, 5), "b": [True, False] * 2 + [True],
         "i": pd.array([1, 2, 3, 4, 5], dtype="Int64")}
    )
    (_, (x, y, _)), = get_data_adapter(frame, pd.Series(np.arange(5)), batch_size=5, shuffle=False).epoch(0)
    assert x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(x), frame.astype("float64").to_numpy().astype(np.float32))


def test_validation_split_on_a_dataframe():
    frame = pd.DataFrame(X, columns=list("abc"))
    history = make_model(False).fit(frame, pd.Series(Y[:, 0]), validation_split=0.25, batch_size=BATCH, verbose=0)
    assert "val_loss" in history.history


@pytest.mark.parametrize(
    "column, message",
    [
        (["a", "b", "c", "d", "e"], r"`x` \(a pandas DataFrame\): column 'city' has dtype (object|str)"),
        (pd.Categorical(list("aabba")), r"column 'city' has dtype category"),
        (pd.array([1, None, 3, 4, 5], dtype="Int64"), r"column 'city' \(Int64\) has missing values"),
    ],
)
def test_columns_that_are_not_numbers_are_named(column, message):
    frame = pd.DataFrame({"size": np.arange(5.0), "city": column})
    with pytest.raises(ValueError, match=message):
        make_model(False).fit(frame, np.zeros(5), verbose=0)


def test_a_series_of_strings_is_named():
    with pytest.raises(ValueError, match=r"`y` \(a pandas Series 'label'\) has dtype (object|str)"):
        make_model(False).fit(X[:2], pd.Series(["a", "b"], name="label"), verbose=0)
