"""Samplers that honour the problem's constraint: exact constrained autoregressive sampling and
Metropolis rules that never leave the sector."""
