"""Throw-away third-party plugins: an installed distribution on a ``sys.path`` entry, with one entry point.

:func:`fake_distribution` writes a module and a ``.dist-info`` folder (METADATA,
entry_points.txt) exactly as pip leaves them, so ``importlib.metadata`` finds
the plugin and gvfuse loads it like any installed one. The ``plugin_site``
fixture (``tests/conftest.py``) gives a fresh such folder per test.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def fake_distribution(root: Path, dist: str, module: str, body: str, version: str = "1.2.3") -> None:
    """An installed distribution ``dist`` on ``root`` whose entry point in group gvfuse is ``module``."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[gvfuse]\n{module} = {module}\n")
