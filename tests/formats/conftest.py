"""Fixtures for the format tests; the builders live in ``scene_builders.py`` (importable from any test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scene_builders import make_landsat_folder, make_s1_safe, make_s2_safe  # noqa: E402

@pytest.fixture
def landsat_folder(tmp_path: Path) -> Path:
    return make_landsat_folder(tmp_path)


@pytest.fixture
def s2_l1c(tmp_path: Path) -> Path:
    return make_s2_safe(tmp_path, "L1C")


@pytest.fixture
def s2_l2a(tmp_path: Path) -> Path:
    return make_s2_safe(tmp_path, "L2A")


@pytest.fixture
def s1_safe(tmp_path: Path) -> Path:
    return make_s1_safe(tmp_path)
