"""Variational ansätze selectable as ``[method] model = "..."`` in a VMC run."""

from .registry import ModelSpec, model_names, model_spec, register_model
from . import netket_builtin  # noqa: F401  (registers rbm, rbm_symm, jastrow)

__all__ = ["ModelSpec", "model_names", "model_spec", "register_model"]
