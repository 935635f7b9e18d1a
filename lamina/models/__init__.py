"""Models (``lm.Model``, ``lm.Sequential``) and the model functions of ``keras.models``.

Imports go one way: ``model.py`` (``Model``) imports neither its subclasses nor the modules
that use it; ``functional.py`` sets ``Model._lm_functional`` when imported, which is how
``lm.Model(inputs, outputs)`` builds a Functional. ``lamina.saving`` never imports this package:
it tells models apart by ``_lm_model_kind`` and finds their classes in the registry.
"""

from lamina.models.cloning import clone_model
from lamina.models.functional import Functional
from lamina.models.json_config import model_from_json
from lamina.models.model import Model
from lamina.models.sequential import Sequential
from lamina.saving.model_file import load_model, save_model

__all__ = ["Functional", "Model", "Sequential", "clone_model", "load_model", "model_from_json", "save_model"]
