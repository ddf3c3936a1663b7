"""Tensor-network baselines on the shared registry (quimb): DMRG."""

from .dmrg import DMRG, DMRGOptions, mps_arrays

__all__ = ["DMRG", "DMRGOptions", "mps_arrays"]
