"""lamina.data: adapters for arrays, generators and Datasets; splitting; validation errors."""

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lamina as lm
import lamina.data
from lamina.data import Dataset, get_data_adapter, train_validation_split, unpack_batch
from lamina.data import adapters as adapters_module


def run_epoch(adapter, epoch=0, block=1):
    return list(adapter.epoch(epoch, block=block))


def unstack(items, pick=lambda d: d[0]):
    """Per-batch leaves (blocks split into their batches) as NumPy."""
    out = []
    for steps, data in items:
        leaf = np.asarray(pick(data))
        out.extend(list(leaf) if steps > 1 else [leaf])
    return out


def seen(items, pick=lambda d: d[0]):
    return np.concatenate([b.reshape(-1) for b in unstack(items, pick)])


class Batches(Dataset):
    """n_batches batches of `size` consecutive integers as x, and 2*x as y."""

    def __init__(self, n_batches, size=4, last=None):
        self.n, self.size, self.last = n_batches, size, last
        self.epoch_ends = 0
        self.epoch_begins = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        size = self.last if (self.last and i == self.n - 1) else self.size
        x = np.arange(i * self.size, i * self.size + size, dtype="float32")[:, None]
        return x, 2 * x

    def on_epoch_begin(self):
        self.epoch_begins += 1

    def on_epoch_end(self):
        self.epoch_ends += 1


# ------------------------------------------------------------------------------------------
# Arrays: order, shuffling, blocks, partial batch
# ------------------------------------------------------------------------------------------


def test_arrays_unshuffled_keep_order_and_partial_batch_comes_last():
    x = np.arange(10, dtype="float32")[:, None]
    adapter = get_data_adapter(x, x * 2, batch_size=4, shuffle=False)
    assert (adapter.steps_per_epoch, adapter.num_samples, adapter.batch_size) == (3, 10, 4)
    items = run_epoch(adapter)
    assert [s for s, _ in items] == [1, 1, 1]
    assert [d[0].shape for _, d in items] == [(4, 1), (4, 1), (2, 1)]
    assert seen(items).tolist() == list(range(10))
    assert seen(items, lambda d: d[1]).tolist() == [2 * i for i in range(10)]
    assert all(d[2] is None for _, d in items)
    assert all(isinstance(d[0], jax.Array) for _, d in items)


def test_blocks_first_then_single_batches_then_partial():
    x = np.arange(23, dtype="float32")[:, None]  # 5 full batches of 4, then 3
    items = run_epoch(get_data_adapter(x, batch_size=4, shuffle=False), block=2)
    assert [s for s, _ in items] == [2, 2, 1, 1]
    assert [d[0].shape for _, d in items] == [(2, 4, 1), (2, 4, 1), (4, 1), (3, 1)]
    assert seen(items).tolist() == list(range(23))
    # block larger than the epoch: all single batches
    items = run_epoch(get_data_adapter(x, batch_size=4, shuffle=False), block=8)
    assert [s for s, _ in items] == [1] * 6


def test_shuffle_sees_every_sample_once_and_reseeding_repeats():
    n = 50
    x = np.arange(n, dtype="float32")[:, None]
    adapter = get_data_adapter(x, x + 100, batch_size=8, shuffle=True)
    lm.random.set_seed(3)
    e0 = seen(run_epoch(adapter, 0, block=2))
    e1 = seen(run_epoch(adapter, 1, block=2))
    for order in (e0, e1):
        assert sorted(order.tolist()) == list(range(n))
    assert e0.tolist() != list(range(n)) and e0.tolist() != e1.tolist()
    # x and y stay paired after shuffling
    items = run_epoch(adapter, 2)
    np.testing.assert_array_equal(seen(items, lambda d: d[1]), seen(items) + 100)
    lm.random.set_seed(3)
    assert seen(run_epoch(adapter, 0, block=2)).tolist() == e0.tolist()
    assert seen(run_epoch(adapter, 1, block=2)).tolist() == e1.tolist()


def test_shuffle_batch_permutes_whole_batches_and_keeps_partial_last():
    x = np.arange(22, dtype="float32")[:, None]
    adapter = get_data_adapter(x, batch_size=4, shuffle="batch")
    lm.random.set_seed(0)
    orders = set()
    for epoch in range(4):
        batches = [b.ravel().tolist() for b in unstack(run_epoch(adapter, epoch))]
        assert batches[-1] == [20.0, 21.0]
        for b in batches[:-1]:
            assert b == list(range(int(b[0]), int(b[0]) + 4)) and b[0] % 4 == 0
        orders.add(tuple(b[0] for b in batches))
    assert len(orders) > 1


def test_dict_and_list_inputs_keep_structure_and_pairing():
    n = 13
    a = np.arange(n, dtype="float32")[:, None]
    x = {"a": a, "b": np.stack([a[:, 0]] * 3, axis=1)}
    y = [a * 10, np.arange(n)]
    adapter = get_data_adapter(x, y, batch_size=5, shuffle=True)
    items = run_epoch(adapter, block=2)
    steps, (bx, by, bsw) = items[0]
    assert steps == 2 and bsw is None
    assert set(bx) == {"a", "b"} and isinstance(by, list) and len(by) == 2
    assert bx["a"].shape == (2, 5, 1) and bx["b"].shape == (2, 5, 3) and by[1].shape == (2, 5)
    xa = seen(items, lambda d: d[0]["a"])
    np.testing.assert_array_equal(seen(items, lambda d: d[0]["b"]), np.repeat(xa, 3))
    np.testing.assert_array_equal(seen(items, lambda d: d[1][0]), xa * 10)
    np.testing.assert_array_equal(seen(items, lambda d: d[1][1]), xa)
    assert sorted(xa.tolist()) == list(range(n))


def test_single_sample_weight_is_shared_by_every_output():
    x = np.zeros((6, 2), "float32")
    sw = np.arange(6, dtype="float32")
    (_, (_, y, w)), = run_epoch(get_data_adapter(x, {"p": x, "q": x}, sw, batch_size=6,
                                                 shuffle=False))
    assert set(w) == {"p", "q"}
    np.testing.assert_array_equal(w["p"], sw)
    np.testing.assert_array_equal(w["q"], sw)


def test_data_stays_on_device_during_epochs():
    x = {"a": np.arange(20.0)[:, None]}
    adapter = get_data_adapter(x, np.arange(20), np.ones(20), batch_size=3, shuffle=True)
    assert all(isinstance(leaf, jax.Array) for leaf in adapter._leaves)
    with jax.transfer_guard_device_to_host("disallow"):
        for epoch in range(2):
            for _, data in adapter.epoch(epoch, block=2):
                assert all(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(data))


def test_64_bit_arrays_become_32_bit_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        adapter = get_data_adapter(
            np.zeros((4, 2), np.float64), np.zeros(4, np.int64), np.ones(4, np.int64),
            batch_size=2, shuffle=False,
        )
        (_, (x, y, sw)), _ = run_epoch(adapter)
    assert (x.dtype, y.dtype, sw.dtype) == (jnp.float32, jnp.int32, jnp.float32)


def test_jax_array_inputs_are_accepted():
    x = jnp.arange(9.0)[:, None]
    items = run_epoch(get_data_adapter(x, batch_size=4, shuffle=False))
    assert seen(items).tolist() == list(range(9))


def test_gather_compiles_a_bounded_number_of_times_across_epochs():
    # Unique shapes so other tests' compilations do not count.
    x = np.zeros((61, 7, 3), "float32")
    y = np.zeros((61, 5), "int32")
    adapter = get_data_adapter(x, y, batch_size=6, shuffle=True)  # 10 full + partial of 1
    before = adapters_module._gather._cache_size()
    run_epoch(adapter, 0, block=4)  # blocks (4, 6), singles (6,), partial (1,)
    after_first = adapters_module._gather._cache_size()
    assert after_first - before <= 3
    for epoch in range(1, 4):
        run_epoch(adapter, epoch, block=4)
    assert adapters_module._gather._cache_size() == after_first


def test_steps_per_epoch_with_arrays_continues_where_the_last_epoch_stopped():
    x = np.arange(10, dtype="float32")[:, None]  # 5 batches of 2
    adapter = get_data_adapter(x, batch_size=2, steps_per_epoch=3, shuffle=False)
    assert adapter.steps_per_epoch == 3
    got = []
    for epoch in range(3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got.append([b[:, 0].tolist() for b in unstack(run_epoch(adapter, epoch))])
        ran_out = any("ran out of data" in str(w.message) for w in caught)
        assert ran_out == (epoch == 1)
    assert got == [[[0, 1], [2, 3], [4, 5]], [[6, 7], [8, 9]], [[0, 1], [2, 3], [4, 5]]]


def test_steps_per_epoch_matches_keras_epoch_iterator(keras):
    from keras.src.trainers.epoch_iterator import EpochIterator

    x = np.arange(11, dtype="float32")[:, None]  # 5 batches of 2 and a partial one
    for spe in (2, 4, 9, None):
        ours = get_data_adapter(x, batch_size=2, steps_per_epoch=spe, shuffle=False)
        theirs = EpochIterator(x, batch_size=2, steps_per_epoch=spe, shuffle=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in range(4):
                mine = [b[:, 0].tolist() for b in unstack(run_epoch(ours, epoch))]
                ref = []
                with theirs.catch_stop_iteration():
                    for _, _, batches in theirs:
                        ref.extend(np.asarray(b)[:, 0].tolist() for b in batches)
                assert mine == ref, (spe, epoch)


def test_steps_per_epoch_with_blocks_never_exceeds_the_cap():
    x = np.arange(20, dtype="float32")[:, None]
    adapter = get_data_adapter(x, batch_size=2, steps_per_epoch=3, shuffle=False)
    items = run_epoch(adapter, 0, block=2)
    assert [s for s, _ in items] == [2, 1]
    assert seen(items).tolist() == list(range(6))
    assert seen(run_epoch(adapter, 1, block=2)).tolist() == list(range(6, 12))


def test_abandoned_epoch_restarts_a_full_pass_without_steps_per_epoch():
    x = np.arange(8, dtype="float32")[:, None]
    adapter = get_data_adapter(x, batch_size=2, shuffle=False)
    for _ in adapter.epoch(0):
        break
    assert seen(run_epoch(adapter, 1)).tolist() == list(range(8))


def test_batch_size_none_follows_keras():
    x = np.zeros((10, 1))
    assert get_data_adapter(x, batch_size=None, steps_per_epoch=3).batch_size == 4
    assert get_data_adapter(x, batch_size=None).batch_size == 32


def test_not_for_training_never_shuffles():
    x = np.arange(30, dtype="float32")[:, None]
    adapter = get_data_adapter(x, batch_size=7, shuffle=True, for_training=False)
    assert seen(run_epoch(adapter)).tolist() == list(range(30))


# ------------------------------------------------------------------------------------------
# Generators and iterables
# ------------------------------------------------------------------------------------------


def make_gen(n, size=2, last=None, with_y=True):
    for i in range(n):
        s = last if (last and i == n - 1) else size
        x = np.full((s, 3), i, np.float64)
        yield (x, np.full((s,), i, np.int64)) if with_y else x


def test_generator_runs_until_exhausted_then_is_exhausted():
    adapter = get_data_adapter(make_gen(5))
    assert adapter.steps_per_epoch is None and adapter.num_samples is None
    items = run_epoch(adapter)
    assert [int(d[0][0, 0]) for _, d in items] == [0, 1, 2, 3, 4]
    _, (x, y, sw) = items[0]
    # Standardized as a Keras user expects (float64 -> float32, int64 -> int32); on the CPU
    # backend the batch stays a NumPy array until the compiled step takes it.
    assert isinstance(x, (np.ndarray, jax.Array)) and x.dtype == jnp.float32 and y.dtype == jnp.int32
    assert sw is None and not adapter.exhausted
    with pytest.warns(UserWarning, match="exhausted"):
        assert run_epoch(adapter, 1) == []
    assert adapter.exhausted


def test_generator_with_steps_per_epoch_draws_from_the_same_generator():
    adapter = get_data_adapter(make_gen(7), steps_per_epoch=3)
    assert adapter.steps_per_epoch == 3
    firsts = [[int(b[0, 0]) for b in unstack(run_epoch(adapter, e))] for e in range(2)]
    assert firsts == [[0, 1, 2], [3, 4, 5]]
    with pytest.warns(UserWarning, match="ran out of data"):
        assert [int(b[0, 0]) for b in unstack(run_epoch(adapter, 2))] == [6]


def test_generator_blocks_stack_equal_batches_and_fall_back_otherwise():
    # batches of 2, 2, 2, 1: the second pair differs in shape, so it comes one by one
    items = run_epoch(get_data_adapter(make_gen(4, size=2, last=1)), block=2)
    assert [s for s, _ in items] == [2, 1, 1]
    assert items[0][1][0].shape == (2, 2, 3) and items[0][1][1].shape == (2, 2)
    assert [d[0].shape for _, d in items[1:]] == [(2, 3), (1, 3)]
    assert [int(b[0, 0]) for b in unstack(items)] == [0, 1, 2, 3]
    # an odd batch out at the end of an exhausted generator comes alone
    items = run_epoch(get_data_adapter(make_gen(5)), block=2)
    assert [s for s, _ in items] == [2, 2, 1]


def test_reiterable_starts_over_each_epoch():
    class Source:
        def __iter__(self):
            return make_gen(3)

    adapter = get_data_adapter(Source())
    for epoch in range(3):
        assert [int(d[0][0, 0]) for _, d in run_epoch(adapter, epoch)] == [0, 1, 2]


def test_generator_batch_forms():
    def gen():
        yield np.ones((2, 1))  # bare x
        yield (np.ones((2, 1)),)
        yield [np.ones((2, 1)), np.zeros(2), np.ones(2)]

    items = run_epoch(get_data_adapter(gen()))
    assert [tuple(v is None for v in d) for _, d in items] == [
        (False, True, True), (False, True, True), (False, False, False)
    ]


# ------------------------------------------------------------------------------------------
# lm.data.Dataset
# ------------------------------------------------------------------------------------------


def test_dataset_in_order_with_hooks_and_blocks():
    ds = Batches(5, size=4, last=2)
    adapter = get_data_adapter(ds, shuffle=False)
    assert adapter.steps_per_epoch == 5 and adapter.batch_size is None
    items = run_epoch(adapter, block=2)
    assert [s for s, _ in items] == [2, 2, 1]
    assert items[0][1][0].shape == (2, 4, 1) and items[-1][1][0].shape == (2, 1)
    assert seen(items).tolist() == list(range(18))
    np.testing.assert_array_equal(seen(items, lambda d: d[1]), np.arange(18) * 2)
    assert (ds.epoch_begins, ds.epoch_ends) == (1, 1)
    run_epoch(adapter, 1)
    assert (ds.epoch_begins, ds.epoch_ends) == (2, 2)


def test_dataset_shuffle_reorders_batch_indices():
    adapter = get_data_adapter(Batches(8, size=3), shuffle=True)
    lm.random.set_seed(1)
    firsts = [int(b[0, 0]) // 3 for b in unstack(run_epoch(adapter))]
    assert sorted(firsts) == list(range(8)) and firsts != list(range(8))
    lm.random.set_seed(1)
    assert [int(b[0, 0]) // 3 for b in unstack(run_epoch(adapter))] == firsts


def test_dataset_steps_per_epoch_follows_keras():
    adapter = get_data_adapter(Batches(5, size=1), steps_per_epoch=3, shuffle=False)
    assert seen(run_epoch(adapter, 0)).tolist() == [0, 1, 2]
    with pytest.warns(UserWarning, match="ran out of data"):
        assert seen(run_epoch(adapter, 1)).tolist() == [3, 4]
    assert seen(run_epoch(adapter, 2)).tolist() == [0, 1, 2]


# ------------------------------------------------------------------------------------------
# class_weight
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["int", "column", "onehot", "float_binary"])
def test_class_weight_matches_keras(keras, form):
    from keras.src.trainers.data_adapters.data_adapter_utils import (
        class_weight_to_sample_weights,
    )

    rng = np.random.default_rng(0)
    ids = rng.integers(0, 3, size=20)
    y = {
        "int": ids,
        "column": ids[:, None],
        "onehot": np.eye(3)[ids],
        "float_binary": (ids % 2).astype("float32")[:, None],
    }[form]
    class_weight = {0: 0.5, 1: 2.0}  # class 2 missing: weight 1
    x = np.zeros((20, 1), "float32")
    items = run_epoch(get_data_adapter(x, y, batch_size=20, shuffle=False,
                                       class_weight=class_weight))
    got = np.asarray(items[0][1][2])
    np.testing.assert_allclose(got, class_weight_to_sample_weights(y, class_weight))


def test_class_weight_multiplies_sample_weight_and_works_for_generators():
    y = np.array([0, 1, 1, 0])
    sw = np.array([1.0, 2.0, 3.0, 4.0])
    x = np.zeros((4, 1))
    (_, (_, _, w)), = run_epoch(get_data_adapter(x, y, sw, batch_size=4, shuffle=False,
                                                 class_weight={1: 10.0}))
    np.testing.assert_allclose(w, [1.0, 20.0, 30.0, 4.0])

    def gen():
        yield x, y

    (_, (_, _, w)), = run_epoch(get_data_adapter(gen(), class_weight={0: 0.5}))
    np.testing.assert_allclose(w, [0.5, 1.0, 1.0, 0.5])


def test_class_weight_errors():
    x = np.zeros((4, 1))
    with pytest.raises(ValueError, match=r"`class_weight` needs targets.*`y` is None"):
        get_data_adapter(x, class_weight={0: 1.0})
    with pytest.raises(ValueError, match=r"only supported for a single output"):
        get_data_adapter(x, [np.zeros(4), np.zeros(4)], class_weight={0: 1.0})
    with pytest.raises(ValueError, match=r"`class_weight` must be a dict"):
        get_data_adapter(x, np.zeros(4), class_weight=[1.0, 2.0])


# ------------------------------------------------------------------------------------------
# train_validation_split, unpack_batch
# ------------------------------------------------------------------------------------------


def test_validation_split_takes_the_last_fraction():
    x = {"a": np.arange(10.0)[:, None], "b": np.arange(10.0)}
    y = np.arange(10) * 2
    (tx, ty, tsw), (vx, vy, vsw) = train_validation_split(x, y, None, validation_split=0.25)
    # floor(10 * 0.75) = 7 train samples, as in Keras
    assert tx["a"][:, 0].tolist() == list(range(7)) and tx["b"].tolist() == list(range(7))
    assert vx["a"][:, 0].tolist() == [7, 8, 9] and vy.tolist() == [14, 16, 18]
    assert ty.tolist() == [0, 2, 4, 6, 8, 10, 12] and tsw is None and vsw is None
    (_, _, tsw), (_, _, vsw) = train_validation_split(
        np.zeros(5), np.zeros(5), np.arange(5.0), validation_split=0.4
    )
    assert tsw.tolist() == [0, 1, 2] and vsw.tolist() == [3, 4]


def test_validation_split_errors():
    with pytest.raises(ValueError, match=r"only works with in-memory arrays.*`x` is a generator"):
        train_validation_split(make_gen(2), validation_split=0.5)
    with pytest.raises(ValueError, match=r"`x` is a Batches"):
        train_validation_split(Batches(2), validation_split=0.5)
    with pytest.raises(ValueError, match=r"holds 3 samples, too few"):
        train_validation_split(np.zeros(3), validation_split=0.9)
    with pytest.raises(ValueError, match=r"strictly between 0 and 1"):
        train_validation_split(np.zeros(3), validation_split=1.0)
    with pytest.raises(ValueError, match=r"x: 4, y: 5"):
        train_validation_split(np.zeros(4), np.zeros(5), validation_split=0.5)


def test_unpack_batch():
    a, b, c = np.ones(1), np.ones(2), np.ones(3)
    assert unpack_batch(a)[1:] == (None, None)
    assert unpack_batch((a,))[0] is a
    assert unpack_batch([a, b])[:2] == (a, b)
    assert unpack_batch((a, b, c))[2] is c
    with pytest.raises(ValueError, match="length 4"):
        unpack_batch((a, b, c, a))


def test_public_names():
    assert lm.data.Dataset is Dataset and lamina.data.get_data_adapter is get_data_adapter


# ------------------------------------------------------------------------------------------
# Validation errors
# ------------------------------------------------------------------------------------------


def test_mismatched_sample_counts_list_every_leaf():
    x = {"a": np.zeros((10, 2)), "b": np.zeros((12, 2))}
    with pytest.raises(ValueError) as err:
        get_data_adapter(x, [np.zeros(10), np.zeros(10)], np.ones(11))
    msg = str(err.value)
    for part in ("x['a']: 10", "x['b']: 12", "y[0]: 10", "y[1]: 10", "sample_weight[0]: 11"):
        assert part in msg
    assert "`x`" in msg


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"x": {"img": np.zeros(3), "txt": np.array(["a", "b", "c"])}},
         r"`x\['txt'\]` has dtype <U1.*numeric"),
        ({"x": np.zeros(3), "y": np.array([None, 1, 2], dtype=object)}, r"`y` has dtype object"),
        ({"x": [np.zeros(3), 5.0]}, r"`x\[1\]` must be a NumPy or JAX array.*np\.asarray"),
        ({"x": np.float32(1.0)}, r"`x` is a scalar"),
        ({"x": np.zeros((0, 3))}, r"empty \(0 samples\)"),
        ({"x": np.zeros(3), "batch_size": 0}, r"`batch_size` must be a positive integer; got 0"),
        ({"x": np.zeros(3), "batch_size": 2.5}, r"`batch_size` must be a positive integer"),
        ({"x": np.zeros(3), "steps_per_epoch": 0}, r"`steps_per_epoch` must be a positive"),
        ({"x": np.zeros(3), "shuffle": "yes"}, r"`shuffle` must be True, False or \"batch\""),
        ({"x": np.zeros(3), "require_y": True}, r"`y` is missing"),
        ({"x": np.zeros(3), "sample_weight": np.ones(3)}, r"`sample_weight` was given but `y`"),
        ({"x": np.zeros(3), "y": [np.zeros(3), np.zeros(3)], "sample_weight": np.ones((3, 2))},
         r"one weight per sample.*\(3, 2\)"),
        ({"x": np.zeros(3), "y": [np.zeros(3), np.zeros(3)], "sample_weight": [np.ones(3)]},
         r"structures differ"),
        ({"x": None}, r"`x` is None"),
        ({"x": {}}, r"holds no arrays at all"),
        ({"x": 42}, r"`x` has an unsupported type"),
        ({"x": "data.csv"}, r"`x` has an unsupported type: str 'data.csv'"),
        ({"x": make_gen(2), "y": np.zeros(2)}, r"`y` must not be given when `x` is a generator"),
        ({"x": Batches(2), "sample_weight": np.zeros(2)},
         r"`sample_weight` must not be given when `x` is an lm.data.Dataset"),
        ({"x": iter([]), "steps_per_epoch": 2}, r"`x` yielded no batch"),
        ({"x": make_gen(2, with_y=False), "require_y": True}, r"Batch 0 from `x`.*`y` is missing"),
    ],
)
def test_errors_name_the_argument(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        get_data_adapter(**kwargs)


def test_require_y_holds_for_evaluation_too_and_y_is_optional_otherwise():
    with pytest.raises(ValueError, match=r"`y` is missing"):
        get_data_adapter(np.zeros(3), require_y=True, for_training=False)
    assert get_data_adapter(np.zeros(3), for_training=False).num_samples == 3


def test_has_partial_batch():
    assert get_data_adapter(np.zeros(10), batch_size=4).has_partial_batch
    assert not get_data_adapter(np.zeros(8), batch_size=4).has_partial_batch
    assert not get_data_adapter(Batches(3)).has_partial_batch


def test_validation_data_name_is_used_in_messages():
    with pytest.raises(ValueError, match=re.escape("validation_data[0]: 4, validation_data[1]: 5")):
        get_data_adapter(np.zeros(4), np.zeros(5), name="validation_data")


class Malformed(Dataset):
    def __init__(self, batch, n=3):
        self.batch, self.n = batch, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.batch


@pytest.mark.parametrize(
    "dataset, pattern",
    [
        (Malformed((np.zeros(2),) * 4), r"Batch 0 from `x` \(a Dataset\).*length 4"),
        (Malformed((np.zeros(4), np.zeros(3))), r"Batch 0 from `x`.*x: 4, y: 3"),
        (Malformed((np.zeros(2), ["a", "b"])), r"Batch 0 from `x`.*`y\[0\]` must be a NumPy"),
        (Malformed((np.zeros(2),), n=0), r"is empty \(__len__ returned 0\)"),
    ],
)
def test_malformed_dataset_is_reported_before_training(dataset, pattern):
    with pytest.raises(ValueError, match=pattern):
        get_data_adapter(dataset)


def test_bad_block_is_reported_when_the_epoch_is_requested():
    adapter = get_data_adapter(np.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match=r"`block` must be a positive integer"):
        adapter.epoch(0, block=0)
