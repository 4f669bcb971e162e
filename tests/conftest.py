"""Fixtures every test folder shares."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gvfuse.plugins import BLOCK_ENV, PluginSet, load_plugins


@pytest.fixture(scope="session")
def plugins() -> PluginSet:
    """The installed plugins (bundled ones through their entry points), as the CLI loads them."""
    return load_plugins()


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh folder on ``sys.path`` for :func:`tests.helpers.plugins.fake_distribution` plugins.

    Their modules must be named ``thirdparty_*``: they are forgotten after the test.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    yield site
    for name in [m for m in sys.modules if m.startswith("thirdparty_")]:
        del sys.modules[name]
