"""A layer's constructor arguments are captured (for ``get_config``) by a fast binding that
must give exactly what ``inspect.Signature.bind_partial`` gives (lamina/layers/layer.py)."""

from __future__ import annotations

import inspect
import random

import pytest

import lamina as lm
from lamina.layers.layer import _bind_init_args, _InitTable


def _by_bind_partial(fn, args, kwargs) -> dict:
    signature = inspect.signature(fn)
    try:
        bound = signature.bind_partial(None, *args, **kwargs)
    except TypeError:
        return {}
    arguments = dict(bound.arguments)
    arguments.pop(next(iter(signature.parameters)), None)  # self
    for name, param in signature.parameters.items():
        if param.kind is param.VAR_KEYWORD and name in arguments:
            arguments.update(arguments.pop(name))
        elif param.kind is param.VAR_POSITIONAL:
            arguments.pop(name, None)
    return arguments


def _keywords(self, a, b=1, *, c=2, **kw): ...
def _star_args(self, a, b=1, *args, c=2): ...
def _plain(self, a, b=2): ...
def _only_kwargs(self, **kw): ...
def _everything(self, a, *args, **kw): ...


@pytest.mark.parametrize("fn", [_keywords, _star_args, _plain, _only_kwargs, _everything], ids=lambda f: f.__name__)
def test_the_fast_binding_equals_bind_partial(fn):
    table, rng = _InitTable(inspect.signature(fn)), random.Random(0)
    assert table.simple
    names = ["a", "b", "c", "d", "self", "kw", "args"]
    for _ in range(1500):
        args = tuple(range(rng.randint(0, 4)))
        kwargs = {name: name.upper() for name in rng.sample(names, rng.randint(0, 4))}
        got, expected = table.bind(args, kwargs), _by_bind_partial(fn, args, kwargs)
        assert got == expected and list(got) == list(expected), (args, kwargs)  # order too


def test_positional_only_parameters_take_the_general_path():
    class Odd(lm.layers.Layer):
        def __init__(self, units, /, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.units, self.scale = units, scale

    assert not _InitTable(inspect.signature(Odd.__init__)).simple
    assert _bind_init_args(Odd, (3,), {"scale": 2.0, "name": "odd"}) == {"units": 3, "scale": 2.0, "name": "odd"}


def test_a_layer_made_positionally_saves_its_arguments():
    class Scaled(lm.layers.Layer):
        def __init__(self, units, scale=1.0, **kwargs):
            super().__init__(**kwargs)
            self.units, self.scale = units, scale

        def call(self, x):
            return x * self.scale

    config = Scaled(4, 0.5, name="s").get_config()
    assert (config["units"], config["scale"], config["name"]) == (4, 0.5, "s")
