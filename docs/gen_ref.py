"""Writes the API reference pages at build time (run by mkdocs-gen-files, see mkdocs.yml).

One page per public module; each public name gets its own ``::: lamina.<module>.<name>``
entry, so a name added to a module's ``__all__`` appears in the reference without editing
anything here. Names are read from the imported modules: ``__all__`` where a module has one,
otherwise the public functions and classes the module defines itself.
"""

from __future__ import annotations

import importlib
import inspect
import json
import types

import mkdocs_gen_files

import lamina

# (page, module path, title, one-line description) in the order of the navigation.
MODULES = [
    ("layers", "lamina.layers", "lm.layers", "Built-in layers, `Input` and the merging functions."),
    ("models", "lamina.models", "lm.models", "`Model`, `Sequential`, the Functional API and cloning."),
    ("losses", "lamina.losses", "lm.losses", "Loss classes and functions."),
    ("metrics", "lamina.metrics", "lm.metrics", "Metric classes and functions."),
    ("optimizers", "lamina.optimizers", "lm.optimizers", "Optimizers (optax underneath)."),
    ("optimizers.schedules", "lamina.optimizers.schedules", "lm.optimizers.schedules", "Learning-rate schedules."),
    ("callbacks", "lamina.callbacks", "lm.callbacks", "Callbacks for `fit`, `evaluate` and `predict`."),
    ("data", "lamina.data", "lm.data", "Datasets, data adapters and the device copy of in-memory data."),
    ("utils", "lamina.utils", "lm.utils", "Utilities: labels, sequences, plots, progress bars, registry shortcuts."),
    ("saving", "lamina.saving", "lm.saving", "Saving, loading and the class registry."),
    ("export", "lamina.export", "lm.export", "`model.export`: StableHLO, ONNX and TF SavedModel for serving."),
    ("random", "lamina.random", "lm.random", "The global seed stream and seed generators."),
    ("initializers", "lamina.initializers", "lm.initializers", "Weight initializers."),
    ("activations", "lamina.activations", "lm.activations", "Activation functions."),
    ("regularizers", "lamina.regularizers", "lm.regularizers", "Weight regularizers."),
    ("constraints", "lamina.constraints", "lm.constraints", "Weight constraints."),
    ("distribution", "lamina.distribution", "lm.distribution", "Device meshes, layouts and distributions."),
    ("mixed_precision", "lamina.mixed_precision", "lm.mixed_precision", "Dtype policies for mixed precision."),
    ("quantizers", "lamina.quantizers", "lm.quantizers", "Quantizers and quantization configs for `model.quantize`."),
    ("config", "lamina.config", "lm.config", "Keras's global settings: floatx, epsilon, image data format, safe mode, logging."),
    ("backend", "lamina.backend", "lm.backend", "Keras's backend helpers: dtypes, uids, `clear_session`."),
]

_FAMILY_TITLES = {"Rnn": "Recurrent"}

# The core page opens with the state mechanism, then the layer and model classes.
_CORE_ORDER = ["Variable", "jit", "value_and_grad", "functionalize", "StateScope", "Layer", "Model", "Sequential", "Input"]

# Modules whose __all__ lists only part of their public names: lm.layers keeps the merging
# functions (add, concatenate...), serialize/deserialize and Keras's alias names (MaxPool2D...)
# out of it (lamina/layers/__init__.py), and they are public all the same.
_PUBLIC_OUTSIDE_ALL = {"lamina.layers"}

# Names that are documented on another page of the reference, not repeated on the core page.
_CORE_SKIP = {"__version__", "KerasTensor"}


def public_names(module: types.ModuleType) -> list[str]:
    """The names a module offers: its ``__all__``, or the functions and classes it defines."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = sorted(
            name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__
        )
    names = list(names)
    if module.__name__ in _PUBLIC_OUTSIDE_ALL:
        names += [
            name for name, obj in sorted(vars(module).items())
            if not name.startswith("_") and name not in names and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__.startswith(module.__name__ + ".")
        ]
    return [name for name in names if not isinstance(getattr(module, name), types.ModuleType)]


def _family(module_path: str, obj: object) -> str:
    """The sub-package an object is defined in, as a section title (``convolution``...)."""
    defined_in = getattr(obj, "__module__", "") or ""
    rest = defined_in.removeprefix(module_path + ".")
    if rest == defined_in or "." not in rest:
        return ""
    return rest.split(".")[0].replace("_", " ").capitalize()


def _entry(module_path: str, module: types.ModuleType, name: str, level: int) -> list[str]:
    """The Markdown for one public name, with ``lamina.<module>.<name>`` as its anchor."""
    obj = getattr(module, name)
    own_name = getattr(obj, "__name__", name)
    anchor = f"{module_path}.{name}"
    heading = "#" * level + f" `{name}` {{ #{anchor} }}"
    if own_name != name and getattr(module, own_name, None) is obj:
        # Keras's second names (mse, glorot_uniform, swish...): one entry, the others point to it.
        return [heading, "", f"Another name for [`{own_name}`][{module_path}.{own_name}].", ""]
    if "<locals>" in getattr(obj, "__qualname__", ""):
        # Made by a factory at import time (get/serialize/deserialize of a family): the
        # documentation tools cannot follow such a function to its source, so it is written here.
        signature = f"{name}{inspect.signature(obj)}"
        return [heading, "", "```python", signature, "```", "", inspect.getdoc(obj) or "", ""]
    lines = [f"::: {anchor}", "    options:", f"      heading_level: {level}"]
    inherited = _trainer_methods(obj)
    if inherited:
        lines.append(f"      inherited_members: {json.dumps(inherited)}")
    return lines + [""]


def _trainer_methods(obj: object) -> list[str]:
    """compile/fit/evaluate/predict...: a model's training API lives in a private base class,
    which the reference shows on each model class (inherited members are not shown otherwise)."""
    from lamina.trainers.trainer import Trainer

    if not (inspect.isclass(obj) and issubclass(obj, Trainer)):
        return []
    return sorted(name for name in vars(Trainer) if not name.startswith("_"))


def module_page(module_path: str, title: str, description: str) -> str:
    module = importlib.import_module(module_path)
    lines = [f"# {title}", "", description, ""]
    names = public_names(module)
    families = {name: _family(module_path, getattr(module, name)) for name in names}
    # Group by the sub-package a name comes from where the module has them (lm.layers), keeping
    # the module's own order inside each group.
    order = sorted(dict.fromkeys(families.values()), key=bool)  # names outside a family first
    grouped = len(order) > 1
    for family in order:
        if grouped:
            lines += [f"## {_FAMILY_TITLES.get(family, family) or 'Base classes and functions'}", ""]
        for name in names:
            if families[name] == family:
                lines += _entry(module_path, module, name, 3 if grouped else 2)
    return "\n".join(lines)


def core_page() -> str:
    lines = [
        "# lamina (core)",
        "",
        "The names at the top of the package (`import lamina as lm`). `lm.KerasTensor` is another "
        "name for `lm.SymbolicTensor`.",
        "",
    ]
    core = reference_entries()[0][2]
    for name in sorted(core, key=lambda name: (_CORE_ORDER.index(name) if name in _CORE_ORDER else len(_CORE_ORDER), name)):
        lines += _entry("lamina", lamina, name, 2)
    return "\n".join(lines)


def reference_entries() -> list[tuple[str, str, list[str]]]:
    """(page, module path, public names) for every page of the reference, the core page first."""
    core = [name for name in lamina.__all__ if name not in _CORE_SKIP and not isinstance(getattr(lamina, name), types.ModuleType)]
    return [("lamina", "lamina", core)] + [
        (page, path, public_names(importlib.import_module(path))) for page, path, _, _ in MODULES
    ]


def write_pages() -> None:
    with mkdocs_gen_files.open("reference/lamina.md", "w") as page:
        page.write(core_page())
    for page_name, module_path, title, description in MODULES:
        with mkdocs_gen_files.open(f"reference/{page_name}.md", "w") as page:
            page.write(module_page(module_path, title, description))


# mkdocs-gen-files runs this file as a script; tests/test_docs_site.py imports it for the list of names.
if __name__ != "gen_ref":
    write_pages()
