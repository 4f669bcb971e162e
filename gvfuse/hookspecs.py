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
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import pystac

    from gvfuse.interfaces import Fusion, Publisher, Reader, Tracker, Validator, Weighting
    from gvfuse.model import MonthlyProduct

hookspec = pluggy.HookspecMarker("gvfuse")
hookimpl = pluggy.HookimplMarker("gvfuse")

# pluggy reads a spec's signature and never calls it; the registration specs raise rather than fall
# through, so that their bodies agree with the lists they declare.


@hookspec
def gvfuse_register_readers() -> list[type[Reader]]:
    """Reader classes (subclasses of :class:`gvfuse.interfaces.Reader`) this plugin provides.

    Combined: all lists are concatenated; names must be unique.
    """
    raise NotImplementedError


@hookspec
def gvfuse_register_trackers() -> list[type[Tracker]]:
    """Tracker classes (subclasses of :class:`gvfuse.interfaces.Tracker`).

    Combined: all lists are concatenated; names must be unique.
    """
    raise NotImplementedError


@hookspec
def gvfuse_register_weightings() -> list[type[Weighting]]:
    """Weighting classes (subclasses of :class:`gvfuse.interfaces.Weighting`).

    Combined: all lists are concatenated; names must be unique.
    """
    raise NotImplementedError


@hookspec
def gvfuse_register_fusions() -> list[type[Fusion]]:
    """Fusion-over-time classes (subclasses of :class:`gvfuse.interfaces.Fusion`).

    Combined: all lists are concatenated; names must be unique.
    """
    raise NotImplementedError  # a specification: pluggy never calls it


@hookspec
def gvfuse_register_validators() -> list[type[Validator]]:
    """Validator classes (subclasses of :class:`gvfuse.interfaces.Validator`).

    Combined: all lists are concatenated; names must be unique.
    """
    raise NotImplementedError


@hookspec
def gvfuse_register_publishers() -> list[type[Publisher]]:
    """Publisher classes (subclasses of :class:`gvfuse.interfaces.Publisher`).

    Combined: all lists are concatenated; names must be unique.
    """
    raise NotImplementedError


@hookspec
def gvfuse_configure(config: dict[str, Any], source: Path) -> None:
    """Called with a run configuration as read from its TOML file, before gvfuse interprets it.

    ``config`` is the parsed file, a mutable dict: what an implementation
    changes is what the run uses (add defaults to a sensor section, fill in
    your own section, rewrite a path). ``source`` is the file. Raising
    :class:`gvfuse.errors.ConfigError` stops with the message. Every
    implementation is called, most recently registered first.
    """


@hookspec
def gvfuse_stac_item_ready(item: pystac.Item, product: MonthlyProduct) -> None:
    """Called with a ``pystac.Item`` just before it is written, and the product it describes.

    Implementations amend the item in place (extra properties, links, assets).
    Every implementation is called, most recently registered first.
    """


@hookspec
def gvfuse_product_published(product: MonthlyProduct, paths: list[Path]) -> None:
    """Called once per month after every configured publisher has written it, with all the paths written.

    For notifications and side products; must not change the written files.
    Every implementation is called.
    """
