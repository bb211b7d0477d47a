"""The README's "Using visc" Python examples run as written, so they cannot drift from the API:
every python block of that section, in order, in one namespace, in a temporary directory
(the files the examples save land there)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def section_blocks(text: str, heading: str = "## Using visc") -> list[str]:
    """The ```python blocks between ``heading`` and the next second-level heading."""
    if heading not in text:
        raise AssertionError(f"README.md has no '{heading}' section")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```python\n(.*?)^```", section, flags=re.S | re.M)


def test_section_blocks_are_found() -> None:
    text = "## Using visc\n```python\na = 1\n```\ntext\n```python\nb = a\n```\n## Next\n```python\nc\n```\n"
    assert section_blocks(text) == ["a = 1\n", "b = a\n"]


def test_using_visc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = section_blocks(README.read_text())
    assert len(blocks) >= 2  # the compiled model and the pipeline
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md (Using visc, block {i})", "exec"), namespace)
    for saved in ("model.visc", "p.visc", "trace.json"):
        assert (tmp_path / saved).stat().st_size > 0
    assert not list(tmp_path.glob(".visc-*.tmp"))  # the atomic saves left no temporary file
