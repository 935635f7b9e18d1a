"""What every loader does with a model's config: bound what it may declare, turn what goes
wrong into an error naming the file, rebuild the model and build its weights.

``model_file.py`` (``.lamina`` files and sharded checkpoints) and ``keras_files`` (``.keras``)
share these; the model classes are found through the registry, which ``lamina.models`` fills
on import, so no saving module imports ``lamina.models``.
"""

from __future__ import annotations

import contextlib
import gc

from lamina.saving.errors import FileFormatError
from lamina.saving.serialization import deserialize_object

BUILD_SLACK_BYTES = 16 * 1024 * 1024
# The most layers a file may declare, all "layers" lists of its config together: far above
# real models, and refused before any layer is made (a compressed config.json of a few KB can
# list hundreds of thousands).
MAX_LAYERS = 100_000


def check_layer_count(config: dict, source: str) -> None:
    """Refuse a config whose ``"layers"`` lists (Sequential's, Functional's, nested models')
    hold more than ``MAX_LAYERS`` entries in all."""
    count, stack = 0, [config]
    while stack:  # iterative: a config may nest deeply
        value = stack.pop()
        if isinstance(value, dict):
            layers = value.get("layers")
            if isinstance(layers, list):
                count += len(layers)
                if count > MAX_LAYERS:
                    raise FileFormatError(f"{source}: config.json declares more than {MAX_LAYERS} layers "
                                          f"(lamina.saving.rebuilding.MAX_LAYERS); it is not loaded.")
            value = value.values()
        # Only containers are pushed: a config is mostly numbers and strings.
        stack += [item for item in value if isinstance(item, (dict, list))]


@contextlib.contextmanager
def collection_paused():
    """Python's cyclic garbage collector off inside (back on after, if it was on).

    Rebuilding a model makes a few objects per layer that all stay alive; with tens of
    thousands of layers the collector would run its full passes over all of them again and
    again (a third of the time a 15,000-layer model took to load), finding nothing to free.

    Example:
        >>> import gc
        >>> with collection_paused():
        ...     gc.isenabled()
        False
        >>> gc.isenabled()
        True
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def is_model(obj) -> bool:
    """Whether ``obj`` is a model (``lm.Model`` or a subclass), as it says itself
    (``_lm_model_kind``: ``None`` for any other layer).

    Example:
        >>> import lamina as lm
        >>> is_model(lm.Sequential()), is_model(lm.layers.Dense(1)), is_model("adam")
        (True, False, False)
    """
    return getattr(obj, "_lm_model_kind", None) is not None


def rebuild(config, custom_objects, source):
    """The model ``config.json`` describes (not yet built)."""
    with as_file_error(source, "model config"):
        model = deserialize_object({"class_name": config["class_name"], "config": config["config"]},
                                   kind="model", aliases={}, custom_objects=custom_objects)
    if not is_model(model):
        raise FileFormatError(f"{source}: config.json names {config['class_name']!r}, which is a "
                              f"{type(model).__name__}, not a model.")
    return model


@contextlib.contextmanager
def as_file_error(source, what):
    """Turn a non-``ValueError`` from rebuilding (a config that reached a constructor with
    wrong arguments, or nests absurdly deep) into a ``FileFormatError`` naming the file.
    ``ValueError`` s pass unchanged: they already say what is wrong (unknown class, safe mode)."""
    try:
        yield
    except ValueError:
        raise
    except (TypeError, KeyError, IndexError, AttributeError, RecursionError) as error:
        raise FileFormatError(f"{source}: the {what} in config.json could not be rebuilt "
                              f"({type(error).__name__}: {error}).") from error


def build(model, build_config, source) -> None:
    """Create ``model``'s weights from the input shape its file saved (nothing when it was
    saved unbuilt, or is built already)."""
    if model.built:
        return
    if build_config and overrides_build_config(model, "build_from_config"):  # Keras's hook, overridden
        try:
            model.build_from_config(build_config)
        except Exception as error:
            raise FileFormatError(f"{source}: model '{model.name}'.build_from_config({build_config!r:.200}) "
                                  f"failed: {error}") from error
        model.built = True
        return
    shape = (build_config or {}).get("input_shape")
    if shape is None:
        return  # a model that was saved unbuilt has no weights to load either
    try:
        model.build_from_shape(_from_json(shape))
    except Exception as error:  # a config that does not fit the saved shape
        raise FileFormatError(f"{source}: could not build model '{model.name}' from input shape {shape}: {error}") from error


def overrides_build_config(obj, hook: str) -> bool:
    """Whether ``obj``'s class overrides Keras's ``get_build_config`` / ``build_from_config``
    (``hook``): ``Layer``'s defaults carry ``_lm_default_build_config``; an override is used
    by saving, as Keras uses it, while the defaults leave the input shape to the model's own
    build config.

    Example:
        >>> import lamina as lm
        >>> overrides_build_config(lm.layers.Dense(2), "get_build_config")
        False
    """
    method = getattr(type(obj), hook, None)
    return method is not None and not getattr(method, "_lm_default_build_config", False)


def _from_json(shape):
    """A shape (or list/dict of shapes) as JSON gives it back: lists become tuples."""
    if isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape):
        return tuple(shape)
    if isinstance(shape, list):
        return [_from_json(s) for s in shape]
    if isinstance(shape, dict):
        return {k: _from_json(v) for k, v in shape.items()}
    raise ValueError(f"not a shape: {shape!r}")
