"""Variational ansätze selectable as ``[method] model = "..."`` in a VMC run (``nqs models``
lists them). Every module here registers its models on import."""

from .registry import ModelSpec, default_model, model_names, model_spec, register_model

__all__ = ["ModelSpec", "default_model", "model_names", "model_spec", "register_model"]
