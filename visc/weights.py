"""The weight store: constant tensors live here, keyed by name, never in IR text.

`vision.weight @name` ops refer to entries. Passes that need values (constant
evaluation) read the store of the current compilation through `current_weights()`;
without one they leave weight arithmetic in the IR, which stays correct.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator, MutableMapping

import numpy as np

_CURRENT: contextvars.ContextVar[WeightStore | None] = contextvars.ContextVar("visc_weights", default=None)


class WeightStore(MutableMapping[str, np.ndarray]):
    """Named numpy arrays with collision-free name generation."""

    def __init__(self, arrays: dict[str, np.ndarray] | None = None):
        self._arrays: dict[str, np.ndarray] = dict(arrays or {})

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        # np.asarray keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
        self._arrays[name] = np.asarray(value, order="C")

    def __delitem__(self, name: str) -> None:
        del self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def fresh_name(self, hint: str) -> str:
        """A name not yet in the store, readable and valid as an IR symbol."""
        base = re.sub(r"[^A-Za-z0-9_.$]", "_", hint) or "w"
        if base[0].isdigit():
            base = "w" + base
        name, i = base, 0
        while name in self._arrays:
            i += 1
            name = f"{base}_{i}"
        return name

    def add(self, hint: str, value: np.ndarray) -> str:
        name = self.fresh_name(hint)
        self[name] = value
        return name

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._arrays.values())

    def save(self, path: str) -> None:
        np.savez(path, **self._arrays)

    @classmethod
    def load(cls, path: str) -> WeightStore:
        with np.load(path, allow_pickle=False) as data:
            return cls({k: data[k] for k in data.files})

    def prune(self, used: set[str]) -> None:
        """Drop entries no `vision.weight` refers to any more."""
        for name in [n for n in self._arrays if n not in used]:
            del self._arrays[name]


def current_weights() -> WeightStore | None:
    return _CURRENT.get()


@contextlib.contextmanager
def use_weights(store: WeightStore | None) -> Iterator[WeightStore | None]:
    token = _CURRENT.set(store)
    try:
        yield store
    finally:
        _CURRENT.reset(token)
