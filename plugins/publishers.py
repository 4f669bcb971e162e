"""Bundled publishers: thin classes around :mod:`gvfuse.publishing`.

* ``stac-intake`` (the default): the month's COG, quick-look and thumbnail,
  its STAC item, the collection and the intake catalog, in one step, so the
  catalogs always describe the files beside them.
* ``cog``: the product files only (COG, quick-look, thumbnail), no catalogs.

Both refuse to replace a published month unless ``force=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gvfuse.hookspecs import hookimpl
from gvfuse.interfaces import Publisher
from gvfuse.model import MonthlyProduct
from gvfuse.plugins import PluginSet
from gvfuse.product import ProductDefinition, load_product
from gvfuse.publishing import DEFAULT_VERSION, publish_month, write_month_files


class StacIntakePublisher(Publisher):
    """COG + quick-looks + STAC item/collection + intake catalog for each month."""

    name = "stac-intake"
    description = "YYYYMM.tif (COG), quick-looks, STAC collection and items, intake catalog.yaml"

    def __init__(
        self,
        definition: ProductDefinition | str | Path,
        *,
        version: str = DEFAULT_VERSION,
        plugins: PluginSet | None = None,
    ) -> None:
        self.definition = definition if isinstance(definition, ProductDefinition) else load_product(definition)
        self.version = version
        self.plugins = plugins

    def publish(self, product: Any, destination: Path, *, force: bool = False) -> list[Path]:
        if not isinstance(product, MonthlyProduct):
            raise TypeError(f"{self.name} publishes MonthlyProduct, got {type(product).__name__}")
        return publish_month(product, self.definition, destination, force=force, version=self.version,
                             plugins=self.plugins)


class CogPublisher(Publisher):
    """The product files only: ``YYYYMM.tif``, ``YYYYMM_quicklook.png``, ``YYYYMM_thumbnail.png``."""

    name = "cog"
    description = "YYYYMM.tif (COG) with quick-look and thumbnail PNGs, no catalogs"

    def __init__(self, title: str = "") -> None:
        self.title = title

    def publish(self, product: Any, destination: Path, *, force: bool = False) -> list[Path]:
        if not isinstance(product, MonthlyProduct):
            raise TypeError(f"{self.name} publishes MonthlyProduct, got {type(product).__name__}")
        return write_month_files(product, destination, force=force, title=self.title)


@hookimpl
def gvfuse_register_publishers() -> list[type]:
    return [StacIntakePublisher, CogPublisher]
