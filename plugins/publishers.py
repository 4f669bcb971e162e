"""Bundled publishers: thin classes around :mod:`gvfuse.publish.month`.

* ``stac-intake`` (the default): the month's COGs (one per variable),
  quick-look, thumbnail and QGIS style, its STAC item, the collection and the
  intake catalog, in one step, so the catalogs always describe the files
  beside them.
* ``cog``: the product files only (COGs, quick-look, thumbnail, style), no catalogs.

Both refuse to replace a published month unless ``force=True``.
"""

from __future__ import annotations

from pathlib import Path

from gvfuse.hookspecs import hookimpl
from gvfuse.interfaces import Publisher
from gvfuse.model import MonthlyProduct
from gvfuse.plugins import PluginSet
from gvfuse.product import ProductDefinition


def _check_product(publisher: str, product: object) -> None:
    if not isinstance(product, MonthlyProduct):
        raise TypeError(f"{publisher} publishes MonthlyProduct, got {type(product).__name__}")


class StacIntakePublisher(Publisher):
    """COG + quick-looks + STAC item/collection + intake catalog for each month."""

    name = "stac-intake"
    description = "YYYYMM_<variable>.tif (COGs), quick-looks, STAC collection and items, intake catalog.yaml"

    def __init__(self, *, definition: ProductDefinition, plugins: PluginSet, version: str | None = None) -> None:
        from gvfuse.publish.month import DEFAULT_VERSION

        super().__init__(definition=definition, plugins=plugins)
        self.version = DEFAULT_VERSION if version is None else version

    def publish(self, product: MonthlyProduct, destination: Path, *, force: bool = False) -> list[Path]:
        from gvfuse.publish.month import publish_month

        _check_product(self.name, product)
        return publish_month(product, self.definition, destination, force=force, version=self.version,
                             plugins=self.plugins)


class CogPublisher(Publisher):
    """The product files only: ``YYYYMM_<variable>.tif``, ``YYYYMM_quicklook.png``, ``YYYYMM_thumbnail.png``,
    ``YYYYMM_v.qml``."""

    name = "cog"
    description = "YYYYMM_<variable>.tif (COGs) with quick-look and thumbnail PNGs and a QGIS style, no catalogs"

    def publish(self, product: MonthlyProduct, destination: Path, *, force: bool = False) -> list[Path]:
        from gvfuse.publish.month import write_month_files

        _check_product(self.name, product)
        return write_month_files(product, destination, force=force, definition=self.definition)


@hookimpl
def gvfuse_register_publishers() -> list[type[Publisher]]:
    return [StacIntakePublisher, CogPublisher]
