"""Progbar: plain lines off a terminal, a throttled live line on one, floats only when drawn."""

import io
import re

import jax.numpy as jnp
import pytest
from rich.console import Console

from lamina.utils import Progbar
from lamina.utils import progbar as progbar_module


@pytest.fixture(autouse=True)
def _environment(monkeypatch):
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock(monkeypatch):
    """A fake clock: each step of the loops below advances it by ``clock.step`` seconds."""

    class Clock:
        now = 1000.0
        step = 0.006

        def __call__(self):
            return self.now

        def tick(self):
            self.now += self.step

    fake = Clock()
    monkeypatch.setattr(progbar_module, "_clock", fake)
    return fake


class Counting:
    """A device-value stand-in that counts its conversions to float."""

    conversions = 0

    def __init__(self, value):
        self.value = value

    def __float__(self):
        Counting.conversions += 1
        return float(self.value)


@pytest.fixture
def counting():
    Counting.conversions = 0
    return Counting


def _run(bar, clock, steps, value=lambda step: 0.5, final=None):
    for step in range(1, steps + 1):
        clock.tick()
        bar.update(step, [("loss", value(step))], finalize=False)
    bar.update(steps, final if final is not None else [("loss", 0.31)], finalize=True)


def _terminal(width=200):
    return Console(file=io.StringIO(), force_terminal=True, width=width, color_system=None)


def test_off_a_terminal_one_plain_line_with_the_expected_fields(clock):
    out = io.StringIO()
    bar = Progbar(12, verbose=1, stateful_metrics=["loss", "accuracy"], file=out)
    _run(bar, clock, 12, final=[("loss", 0.31), ("accuracy", 0.91), ("val_loss", 0.0004)])
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert "\r" not in text and "\x1b" not in text
    assert re.fullmatch(r"12/12 ━{20} 0s 6ms/step - loss: 0\.3100 - accuracy: 0\.9100"
                        r" - val_loss: 4\.0000e-04\n", text), text


def test_verbose_2_prints_one_line_at_the_end(clock):
    out = io.StringIO()
    bar = Progbar(12, verbose=2, file=out)
    _run(bar, clock, 12)
    assert out.getvalue() == "12/12 - 0s - 6ms/step - loss: 0.3100\n"


def test_verbose_0_prints_nothing_and_stores_nothing(clock, counting):
    out = io.StringIO()
    bar = Progbar(12, verbose=0, file=out)
    _run(bar, clock, 12, value=counting)
    assert out.getvalue() == "" and counting.conversions == 0


def test_on_a_terminal_the_line_is_redrawn_in_place_at_most_every_interval(clock):
    console = _terminal()
    bar = Progbar(100, verbose=1, interval=0.1, file=console)
    clock.step = 0.01  # ten steps per interval
    _run(bar, clock, 100)
    text = console.file.getvalue()
    redraws = text.split("\r")[1:]
    assert 10 <= len(redraws) <= 12  # the first step, every 0.1 s, and the final line
    assert text.endswith("\n") and text.count("\n") == 1
    assert redraws[-1].startswith("100/100 ━") and "loss: 0.3100" in redraws[-1]
    middle = re.search(r"\r (\d\d)/100 ━{20} (\d)s 10ms/step - loss: 0\.5000\x1b\[0K", text)
    assert middle and int(middle[2]) == round((100 - int(middle[1])) * 0.01)  # the ETA


def test_values_are_converted_only_when_the_bar_is_drawn(clock, counting):
    clock.step = 0.001
    bar = Progbar(1000, verbose=1, interval=0.1, stateful_metrics=["loss"], file=_terminal())
    _run(bar, clock, 1000, value=counting)
    # one value per redraw (about 1000 * 0.001 / 0.1 = 10), not one per step
    assert 1 <= counting.conversions <= 12

    counting.conversions = 0
    out = io.StringIO()
    _run(Progbar(1000, verbose=1, stateful_metrics=["loss"], file=out), clock, 1000, value=counting)
    assert counting.conversions == 0  # off a terminal only the final values are read
    assert "loss: 0.3100" in out.getvalue()


def test_a_value_is_converted_once_however_often_it_is_drawn(clock, counting):
    value = counting(0.25)
    clock.step = 1.0  # every update redraws
    bar = Progbar(10, verbose=1, stateful_metrics=["loss"], file=_terminal())
    _run(bar, clock, 10, value=lambda step: value, final=[("loss", value)])
    assert counting.conversions == 1


def test_unlisted_values_are_averaged_over_steps_like_keras(clock):
    console = _terminal()
    bar = Progbar(4, verbose=1, interval=0.0, file=console)
    for step, value in enumerate([1.0, 2.0, 3.0], start=1):
        clock.tick()
        bar.update(step, [("loss", jnp.float32(value)), ("lr", 0.1)], finalize=False)
    bar.add(1, [("loss", jnp.float32(6.0)), ("lr", 0.1)])  # reaches the target: final values
    lines = console.file.getvalue().split("\r")
    assert "loss: 2.0000" in lines[-2]  # (1 + 2 + 3) / 3
    assert "loss: 6.0000" in lines[-1]

    # a jump of several steps weighs its value by the steps it covers
    console = _terminal()
    bar = Progbar(10, verbose=1, interval=0.0, file=console)
    bar.update(1, [("loss", 1.0)])
    bar.update(4, [("loss", 2.0)])
    assert "loss: 1.7500" in console.file.getvalue().split("\r")[-1]

    with pytest.raises(ValueError, match="only one"):
        Progbar(1, stateful_metrics=["a"], stateless_metrics=["b"])


def test_long_runs_without_redraws_keep_bounded_pending_values(clock):
    values = [jnp.float32(0.0), jnp.float32(1.0)]
    bar = Progbar(3000, verbose=2, file=io.StringIO())
    for step in range(1, 3001):
        bar.update(step, [("loss", values[step % 2])], finalize=False)
    assert len(bar._pending["loss"]) < 1024
    assert bar._value("loss") == pytest.approx(0.5)


def test_unknown_target_and_narrow_terminals(clock):
    out = io.StringIO()
    bar = Progbar(None, verbose=1, file=out)
    for step in range(1, 6):
        clock.tick()
        bar.update(step, [("loss", 0.5)])
    bar.update(5, [("loss", 0.5)], finalize=True)
    assert out.getvalue().startswith("      5/Unknown 0s 6ms/step - loss: 0.5000")

    console = _terminal(width=40)
    bar = Progbar(10, verbose=1, file=console, stateful_metrics=["loss", "accuracy"])
    bar.update(1, [("loss", 0.5), ("accuracy", 0.5)])
    live = console.file.getvalue().split("\r")[1]
    assert len(live.replace("\x1b[0K", "")) <= 39  # the live line never wraps


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0s/step"), (2.4, "2s/step"), (0.0061, "6ms/step"), (0.000012, "12us/step")])
def test_step_time_format(seconds, text):
    assert progbar_module._format_step_time(seconds, "step") == text


@pytest.mark.parametrize("seconds, text", [(3.2, "3s"), (65, "1:05"), (3725, "1:02:05")])
def test_eta_format(seconds, text):
    assert progbar_module._format_eta(seconds) == text


def test_time_after_the_last_step_is_not_step_time(clock):
    out = io.StringIO()
    bar = Progbar(12, verbose=1, file=out)
    for step in range(1, 13):
        clock.tick()
        bar.update(step, [("loss", 0.5)], finalize=False)
    clock.now += 10.0  # validation, between the last step and the epoch's end
    bar.update(12, [("loss", 0.31), ("val_loss", 0.5)], finalize=True)
    assert " 10s 6ms/step - loss: 0.3100 - val_loss: 0.5000\n" in out.getvalue()
