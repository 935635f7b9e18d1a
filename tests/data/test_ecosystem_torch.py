"""fit / evaluate / predict on PyTorch data (a DataLoader; a Dataset lamina batches) give the
numbers of the same data as arrays."""

import numpy as np
import pytest

from tests.data.ecosystem_cases import (
    BATCH,
    N,
    X,
    Y,
    assert_same,
    make_model,
    run,
)

torch = pytest.importorskip("torch")


class Samples(torch.utils.data.Dataset):
    """One sample per index: ``x`` (a tensor or a dict of tensors), or ``(x, y[, sw])``."""

    def __init__(self, x, y, sw):
        as_tensor = torch.from_numpy
        self.x = {k: as_tensor(v) for k, v in x.items()} if isinstance(x, dict) else as_tensor(x)
        self.rest = [as_tensor(part) for part in (y, sw) if part is not None]

    def __len__(self):
        return len(self.rest[0]) if self.rest else len(next(iter(self.x.values())) if isinstance(self.x, dict) else self.x)

    def __getitem__(self, i):
        x = {k: v[i] for k, v in self.x.items()} if isinstance(self.x, dict) else self.x[i]
        return (x, *(part[i] for part in self.rest)) if self.rest else x


def loader_source(x, y, sw):
    return {"x": torch.utils.data.DataLoader(Samples(x, y, sw), batch_size=BATCH)}


def dataset_source(x, y, sw):
    return {"x": Samples(x, y, sw)}


# Every case runs on a batch source in test_ecosystem_tf.py (the same adapter): here the
# conversion of tensors, of the default collate's lists and dicts.
@pytest.mark.parametrize("case", ["weighted_spe4", "dict_inputs"])
def test_dataloader_numbers_equal_arrays(case):
    assert_same(run(case, loader_source), case)


@pytest.mark.parametrize("case", ["weighted_spe1", "steps_class_weight", "shuffled", "shuffled_batches"])
def test_map_style_dataset_is_batched_and_shuffled_as_arrays(case):
    assert_same(run(case, dataset_source), case)


def test_len_of_the_loader_gives_the_steps_and_batches_share_memory():
    from lamina.data import get_data_adapter
    from lamina.data.torch_adapter import to_numpy

    loader = torch.utils.data.DataLoader(Samples(X, Y, None), batch_size=BATCH)
    assert get_data_adapter(loader).steps_per_epoch == len(loader) == 6
    tensor = torch.zeros(3, requires_grad=True)
    array = to_numpy(tensor)
    tensor.data[0] = 5.0
    assert array[0] == 5.0  # a view, not a copy
    bf16 = to_numpy(torch.ones(2, dtype=torch.bfloat16))
    assert str(bf16.dtype) == "bfloat16" and bf16.astype(np.float32).tolist() == [1.0, 1.0]


def test_a_loader_reshuffles_each_epoch_with_its_own_sampler():
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(Samples(X, Y, None), batch_size=BATCH, shuffle=True)
    from lamina.data import get_data_adapter

    adapter = get_data_adapter(loader)
    epochs = [np.concatenate([np.asarray(d[0]) for _, d in adapter.epoch(i)]) for i in range(2)]
    for rows in epochs:
        np.testing.assert_array_equal(np.sort(rows, axis=0), np.sort(X, axis=0))
    assert not np.array_equal(epochs[0], epochs[1])


def test_an_iterable_dataset_is_cut_into_batches_in_order():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(zip(torch.from_numpy(X), torch.from_numpy(Y)))

    model = make_model(False)
    got = model.evaluate(Stream(), batch_size=BATCH, verbose=0)
    want = model.evaluate(X, Y, batch_size=BATCH, verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_batches_that_do_not_fit_are_clear_errors():
    model = make_model(False)
    four = torch.utils.data.TensorDataset(*(torch.from_numpy(a) for a in (X, Y, Y, Y)))
    with pytest.raises(ValueError, match=r"Batch 0 from `x` \(a torch DataLoader\) must be .*length 4"):
        model.fit(torch.utils.data.DataLoader(four, batch_size=BATCH), verbose=0)
    with pytest.raises(ValueError, match=r"a torch Dataset\).*length 4"):
        model.fit(four, verbose=0)
    with pytest.raises(ValueError, match=r"`sample_weight` must not be given when `x` is a torch Dataset"):
        model.fit(Samples(X, Y, None), sample_weight=np.ones(N), verbose=0)
