"""Models (``lm.Model``, ``lm.Sequential``) and the model functions of ``keras.models``."""

from lamina.models.cloning import clone_model
from lamina.models.functional import Functional
from lamina.models.json_config import model_from_json
from lamina.models.model import Model
from lamina.models.sequential import Sequential
from lamina.saving.model_file import load_model, save_model

__all__ = ["Functional", "Model", "Sequential", "clone_model", "load_model", "model_from_json", "save_model"]
