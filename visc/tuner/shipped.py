"""Where the tuning records visc ships live: without importing the tuner (xDSL, Optuna), so
the model cache (`visc.model_cache`) can fingerprint them before a compile starts."""

from __future__ import annotations

import os

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped")
SHIPPED_ENV = "VISC_SHIPPED_RECORDS"  # another directory of shipped records (tests, deployments)


def shipped_dir() -> str:
    return os.environ.get(SHIPPED_ENV) or SHIPPED_DIR


__all__ = ["SHIPPED_DIR", "SHIPPED_ENV", "shipped_dir"]
