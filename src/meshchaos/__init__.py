"""meshchaos: chaos and resilience tests for Istio service meshes.

A scenario applies Istio policy to a mesh, drives load through it, and checks
the observed outcomes against what the policy predicts.
"""

from meshchaos.errors import (
    BackendUnavailable,
    ConfigInvalid,
    LoadError,
    MeshChaosError,
    MeshError,
    PolicyDeviation,
)

__all__ = [
    "BackendUnavailable",
    "ConfigInvalid",
    "LoadError",
    "MeshChaosError",
    "MeshError",
    "PolicyDeviation",
]

__version__ = "0.1.0"
