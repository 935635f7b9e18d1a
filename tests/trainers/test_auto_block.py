"""``steps_per_execution="auto"`` decides between single steps and blocks by measuring them.

The decision is tested with a fake clock (timings are not asserted on this machine); the
switch in the middle of an epoch is tested on real ``fit`` calls against single steps.
"""

import numpy as np
import pytest

import lamina as lm
from lamina.trainers import auto_block
from lamina.trainers.auto_block import AutoBlock, divisor_block


class FakeClock:
    """A clock the test moves: each call to ``tick(seconds)`` is one step's cost."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def tick(self, seconds):
        self.now += seconds


def _run(chooser, clock, single_cost, block_cost_per_step, calls):
    """Drive ``chooser`` as the epoch loop does: ask the size, run (tick), observe."""
    sizes = []
    for _ in range(calls):
        steps = chooser()
        sizes.append(steps)
        clock.tick(single_cost if steps == 1 else steps * block_cost_per_step)
        chooser.observe(steps, None)
    return sizes


def test_long_single_steps_stay_single_without_trying_blocks():
    clock = FakeClock()
    chooser = AutoBlock(full_steps=1000, clock=clock)
    sizes = _run(chooser, clock, single_cost=0.03, block_cost_per_step=0.001, calls=10)
    # One compiling call, three timed ones, then decided: a 30 ms step gains nothing from blocks.
    assert sizes == [1] * 10
    assert chooser.phase == "decided" and chooser.block == 1
    assert chooser.single_seconds == pytest.approx(0.03)
    assert chooser.block_seconds is None  # the scanned form was never compiled


def test_short_steps_keep_blocks_when_they_are_faster():
    clock = FakeClock()
    chooser = AutoBlock(full_steps=3200, clock=clock)
    sizes = _run(chooser, clock, single_cost=1e-4, block_cost_per_step=2e-5, calls=400)
    timed = sizes.index(chooser.block)
    assert all(size == 1 for size in sizes[:timed])
    # Blocks sized for about BLOCK_SECONDS at the measured single-step cost, within the
    # sixteen-calls-per-epoch cap, and dividing the epoch.
    expected = divisor_block(3200, min(round(auto_block.BLOCK_SECONDS / 1e-4), 3200 // 16))
    assert chooser.block == expected > 1
    assert chooser.phase == "decided"
    assert chooser.block_seconds == pytest.approx(2e-5)
    assert set(sizes[timed:]) == {expected}


def test_short_steps_go_back_to_single_when_blocks_are_slower():
    # The XLA:CPU convolution-gradient case: a scanned step 30x slower than a single one.
    clock = FakeClock()
    chooser = AutoBlock(full_steps=3200, clock=clock)
    sizes = _run(chooser, clock, single_cost=1e-3, block_cost_per_step=3e-2, calls=200)
    assert chooser.phase == "decided" and chooser.block == 1
    assert sizes.count(sizes[-1]) > 150 and sizes[-1] == 1
    # What the trial cost: two blocks (one compiling, one timed), never more.
    assert sum(1 for size in sizes if size > 1) == 2


def test_blocks_no_more_than_five_percent_faster_are_not_kept():
    clock = FakeClock()
    chooser = AutoBlock(full_steps=3200, clock=clock)
    _run(chooser, clock, single_cost=1e-3, block_cost_per_step=0.97e-3, calls=100)
    assert chooser.phase == "decided" and chooser.block == 1


def test_an_epoch_too_short_for_blocks_of_two_is_decided_at_once():
    chooser = AutoBlock(full_steps=20)
    assert chooser.phase == "decided" and chooser() == 1


def test_the_time_between_epochs_is_not_timed_and_short_epochs_add_up():
    clock = FakeClock()
    chooser = AutoBlock(full_steps=1000, clock=clock)
    for _ in range(30):  # epochs of 20 steps of 0.1 ms: 10 ms of timed steps takes several
        _run(chooser, clock, single_cost=1e-4, block_cost_per_step=1e-4, calls=20)
        chooser.pause()
        clock.tick(5.0)  # validation, callbacks: not a step's cost
    assert chooser.single_seconds == pytest.approx(1e-4)
    assert chooser.phase == "decided"


@pytest.mark.parametrize("divisible", [True, False])
def test_divisor_block(divisible):
    if divisible:
        assert divisor_block(96, 10) == 8  # 96 = 12 * 8: no single steps after the blocks
    else:
        assert divisor_block(97, 10) == 10  # 97 is prime: no divisor in (5, 10]
    assert divisor_block(5, 10) == 5
    assert divisor_block(0, 10) == 1


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x @ rng.normal(size=(4, 1))).astype("float32")


def _model(**compile_kwargs):
    lm.random.set_seed(0)
    model = lm.Sequential([lm.layers.Dense(8, activation="tanh", input_shape=(4,)), lm.layers.Dense(1)])
    model.compile(lm.optimizers.Adam(0.01), "mse", metrics=["mae"], **compile_kwargs)
    return model


def test_auto_switching_to_blocks_mid_epoch_trains_exactly_as_single_steps(monkeypatch):
    # Any step counts as short and blocks as faster: the switch happens after the timed
    # single steps, in the middle of the first epoch, whatever this machine's speed.
    monkeypatch.setattr(auto_block, "SINGLE_IS_ENOUGH", float("inf"))
    monkeypatch.setattr(auto_block, "_SCAN_MUST_SAVE", float("inf"))
    monkeypatch.setattr(auto_block, "_MAX_TIMED_STEPS", 3)
    x, y = _data(8 * 67 + 3)  # 67 full batches of 8 and a partial one
    single = _model(steps_per_execution=1)  # seeds the weights and the shuffles
    h_single = single.fit(x, y, batch_size=8, epochs=3, verbose=0)
    auto = _model()
    h_auto = auto.fit(x, y, batch_size=8, epochs=3, verbose=0)
    (chooser,) = auto._lm_auto_blocks.values()
    assert chooser.phase == "decided" and chooser.block > 1
    for a, b in zip(single.get_weights(), auto.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_single.history["loss"], h_auto.history["loss"], rtol=1e-5)
    assert int(auto.optimizer.iterations.numpy()) == 3 * 68


def test_the_auto_choice_is_kept_across_fit_calls_and_forgotten_by_compile(monkeypatch):
    monkeypatch.setattr(auto_block, "SINGLE_IS_ENOUGH", 0.0)  # every step counts as long
    monkeypatch.setattr(auto_block, "_MIN_TIMED_SECONDS", 0.0)
    x, y = _data(8 * 40)
    model = _model()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    (chooser,) = model._lm_auto_blocks.values()
    assert chooser.phase == "decided" and chooser.block == 1
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert list(model._lm_auto_blocks.values()) == [chooser]
    model.compile(lm.optimizers.Adam(0.01), "mse")
    assert model._lm_auto_blocks == {}


def test_short_capped_blocks_are_timed_over_several_calls():
    # 40 steps an epoch: blocks of at most two, 0.2 ms each; one such block is too short to
    # time, so the timing adds blocks up to 10 ms (across epochs) before deciding.
    clock = FakeClock()
    chooser = AutoBlock(full_steps=40, clock=clock)
    for _ in range(40):
        _run(chooser, clock, single_cost=1.3e-4, block_cost_per_step=1e-4, calls=20)
        chooser.pause()
        clock.tick(1.0)
        if chooser.phase == "decided":
            break
    assert chooser.phase == "decided" and chooser.block == 2
    assert chooser.block_seconds == pytest.approx(1e-4)
