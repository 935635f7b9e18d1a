"""Models (``lm.Model``, ``lm.Sequential``)."""

from lamina.models.model import Model
from lamina.models.sequential import Sequential

__all__ = ["Model", "Sequential"]
