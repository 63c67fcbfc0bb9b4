"""Bridges to other simulation frameworks (optional dependencies, imported lazily).

- :func:`phiflow_physics`: a PhiFlow (torch backend) function as a physgrad physics
  (``pip install physgrad[phiflow]``); :func:`centered_grid` / :func:`staggered_grid` view
  physgrad fluid fields as PhiFlow grids and :func:`phiflow_fluid_step` is physgrad's fluid
  step written with PhiFlow (for agreement tests and timings).
"""

from physgrad.interop.phiflow import (
    centered_grid,
    phiflow_fluid_step,
    phiflow_physics,
    staggered_grid,
    to_phiml,
)

__all__ = [
    "centered_grid",
    "phiflow_fluid_step",
    "phiflow_physics",
    "staggered_grid",
    "to_phiml",
]
