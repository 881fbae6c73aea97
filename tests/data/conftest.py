"""Shared fixtures of the dataset tests.

Tests marked ``data`` read the real datasets under ``$MTLKIT_DATA`` and are
skipped, with a reason, when it is unset. Everything else runs on tiny files
the tests write themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtlkit.data import _root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MTLKIT_DATA"):
        return
    skip = pytest.mark.skip(reason="needs MTLKIT_DATA pointing at the real datasets")
    for item in items:
        if item.get_closest_marker("data") is not None:
            item.add_marker(skip)


@pytest.fixture
def data_root() -> Path:
    """The real data root (only reached by tests marked ``data``)."""
    return Path(os.environ["MTLKIT_DATA"])


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache directory and no remembered checksum verdicts."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MTLKIT_CACHE", str(cache))
    monkeypatch.setattr(_root, "_verdicts", {})
    monkeypatch.setattr(_root, "_unsaved", set())
    monkeypatch.setattr(_root, "_verdicts_loaded", False)
    yield cache
