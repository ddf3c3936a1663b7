"""Tensor-network baselines on the shared registry (quimb): DMRG (:mod:`.dmrg`), PEPS by simple
update (:mod:`.peps`) and the autoregressive neural tensor network (:mod:`tensornets.antn`,
imported on demand: it pulls in JAX, flax and NetKet). Each is a run method (``kind = "dmrg" |
"peps" | "antn"``) found by the runner through the ``nqs.methods`` entry points."""

from .dmrg import DMRG, DMRGOptions, mps_arrays
from .peps import PEPS, PEPSOptions

__all__ = ["DMRG", "DMRGOptions", "PEPS", "PEPSOptions", "mps_arrays"]
