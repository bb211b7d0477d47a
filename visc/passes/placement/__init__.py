"""Placement of vision ops on devices (docs/architecture.md, "Placement"):

* `vision-placement` tags every compute op ``placement = "cpu" | "gpu"``;
* `vision-insert-copies` makes the device changes explicit: each operand produced on the
  other device is marked, once per (value, device), as a copy the runtime performs.
"""

from __future__ import annotations

from collections.abc import Sequence


def placement_spec(target: str, fallback: Sequence[str]) -> str:
    """The `vision-placement` pass spec for a GPU ``target`` and user fallback op types."""
    ops = ",".join(fallback)
    return f"vision-placement{{target={target} fallback={ops}}}" if fallback else \
        f"vision-placement{{target={target}}}"


__all__ = ["placement_spec"]
