"""Shared fixtures: the real data in ../shared (skipped with a message when absent, failed when CI requires it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SETE_VSR_SHARED", ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under the shared data folder; skips the calling test when it is absent.

    With ``SETE_VSR_REQUIRE_SHARED=1`` (set by ``.ci/run``, where the data is always there) a missing file fails the
    test instead, so a renamed or lost file cannot hide a real-data test behind a skip.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"shared data not found: {path} (set SETE_VSR_SHARED to its folder)"
        if os.environ.get("SETE_VSR_REQUIRE_SHARED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared() -> callable:
    """``shared("data", "frames", "vid4_GT")`` -> Path, or skip the test."""
    return shared_path


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """No test may reach the Hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
