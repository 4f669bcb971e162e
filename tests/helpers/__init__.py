"""Helpers shared by the tests: where the shared reference data is, and builders of test inputs.

``SHARED`` is the read-only ``../shared`` folder beside the project (reference
data, provider metadata samples, STAC extension schemas). Tests that need it
use :func:`needs_shared`, so they skip with the reason on a machine without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SCHEMAS = SHARED / "stac-schemas"


def needs_shared(path: Path) -> pytest.MarkDecorator:
    """Skip the test (with the path in the reason) when ``path`` under ``../shared`` is absent."""
    return pytest.mark.skipif(not path.exists(), reason=f"needs {path} (../shared is absent)")
