"""``lm.utils.Config``: Keras 3's attribute dictionary, against ``keras.utils.Config``."""

import copy
import json
import pickle

import pytest

import lamina as lm


def test_attribute_and_item_access_share_entries_as_keras():
    import keras

    ours, theirs = lm.utils.Config(learning_rate=0.1), keras.utils.Config(learning_rate=0.1)
    for config in (ours, theirs):
        config.momentum = 0.9
        config["seed"] = 3
        config.update(zeta=1)
    assert ours.as_dict() == theirs.as_dict() == {"learning_rate": 0.1, "momentum": 0.9, "seed": 3, "zeta": 1}
    assert list(ours) == list(theirs) == ["learning_rate", "momentum", "seed", "zeta"]
    assert ours.seed == ours["seed"] == 3 and "momentum" in ours and len(ours) == 4
    assert json.loads(ours.to_json()) == json.loads(theirs.to_json())
    assert ours.get("missing", 5) == 5 and ours.pop("zeta") == 1 and "zeta" not in ours
    assert repr(ours) == "<Config {'learning_rate': 0.1, 'momentum': 0.9, 'seed': 3}>"


def test_frozen_config_refuses_every_write_until_unfrozen():
    config = lm.utils.Config(a=1)
    config.freeze()
    assert config.frozen
    writes = [lambda: setattr(config, "b", 2), lambda: config.__setitem__("a", 2), lambda: config.update(a=2),
              lambda: config.pop("a"), lambda: config.__delitem__("a"), lambda: delattr(config, "a")]
    for write in writes:
        with pytest.raises(ValueError, match="Cannot mutate attribute\\(s\\) because the config is frozen."):
            write()
    assert config.as_dict() == {"a": 1}
    config.unfreeze()
    config.b = 2
    del config.a
    assert config.as_dict() == {"b": 2} and not config.frozen


def test_unknown_attribute_suggests_the_closest_key():
    config = lm.utils.Config(learning_rate=0.1)
    with pytest.raises(AttributeError, match="Unknown attribute: 'learning_rat'. Did you mean 'learning_rate'\\?"):
        _ = config.learning_rat
    with pytest.raises(AttributeError, match="^Unknown attribute: 'zzz'.$"):
        _ = config.zzz


def test_copies_and_pickles_keep_entries_and_frozen_state():
    config = lm.utils.Config(a=[1], b="x")
    config.freeze()
    for clone in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert clone.as_dict() == {"a": [1], "b": "x"} and clone.frozen
    assert copy.copy(config).a is config.a
