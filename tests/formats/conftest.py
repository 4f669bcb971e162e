"""Fixtures for the format tests: provider scene folders built by :mod:`tests.helpers.scenes`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.scenes import make_landsat_folder, make_s1_safe, make_s2_safe


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
