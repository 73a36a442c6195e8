"""The former home of ``atomic_moto``, kept so that existing imports keep working.

Import it from the public module instead: ``from saga_store_pynamo.moto import atomic_moto``.
"""

from __future__ import annotations

from .moto import atomic_moto

__all__ = ["atomic_moto"]
