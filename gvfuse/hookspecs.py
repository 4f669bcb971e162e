"""The hooks gvfuse plugins implement.

Two kinds of hooks:

* **Registration hooks** (``gvfuse_register_*``) return a list of classes.
  Every implementation is called once when the plugin manager builds its
  registry; the lists are concatenated. Each class has a unique ``name``
  (its key in configurations and on the command line); two classes of the
  same kind with one name are an error that names both plugins.
* **Event hooks** are called at fixed points of a run with the objects of
  that moment; every implementation is called (none may stop the others),
  their return values are ignored unless stated.

Pixel work never goes through these hooks: they hand classes to the core once,
and the core uses the classes directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("gvfuse")
hookimpl = pluggy.HookimplMarker("gvfuse")


@hookspec
def gvfuse_register_readers() -> list[type]:
    """Reader classes (subclasses of :class:`gvfuse.interfaces.Reader`) this plugin provides.

    Combined: all lists are concatenated; names must be unique.
    """


@hookspec
def gvfuse_register_trackers() -> list[type]:
    """Tracker classes (subclasses of :class:`gvfuse.interfaces.Tracker`).

    Combined: all lists are concatenated; names must be unique.
    """


@hookspec
def gvfuse_register_weightings() -> list[type]:
    """Weighting classes (subclasses of :class:`gvfuse.interfaces.Weighting`).

    Combined: all lists are concatenated; names must be unique.
    """


@hookspec
def gvfuse_register_validators() -> list[type]:
    """Validator classes (subclasses of :class:`gvfuse.interfaces.Validator`).

    Combined: all lists are concatenated; names must be unique.
    """


@hookspec
def gvfuse_register_publishers() -> list[type]:
    """Publisher classes (subclasses of :class:`gvfuse.interfaces.Publisher`).

    Combined: all lists are concatenated; names must be unique.
    """


@hookspec
def gvfuse_configure(config: dict[str, Any]) -> None:
    """Called once with the run configuration (a mutable dict) before any work starts.

    Implementations may read it, add defaults of their own or check their
    section; raising :class:`gvfuse.errors.ConfigError` stops the run with the
    message. Every implementation is called.
    """


@hookspec
def gvfuse_stac_item_ready(item: Any, product: Any) -> None:
    """Called with a ``pystac.Item`` just before it is written, and the product it describes.

    Implementations amend the item in place (extra properties, links, assets).
    Every implementation is called, most recently registered first.
    """


@hookspec
def gvfuse_product_published(product: Any, paths: list[Path]) -> None:
    """Called after a product and its metadata have been written, with the paths written.

    For notifications and side products; must not change the written files.
    Every implementation is called.
    """
