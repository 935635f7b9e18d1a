"""Utilities."""

from lamina.utils.progbar import Progbar  # noqa: F401
