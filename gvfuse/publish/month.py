"""Publishing one month: product files, STAC item and collection, intake catalog, event hooks.

:func:`publish_month` writes, in this order, so that no metadata ever points
at a file that does not exist yet:

1. one COG per variable ``YYYYMM_<variable>.tif`` (:mod:`gvfuse.publish.cog`),
   ``YYYYMM_quicklook.png``, ``YYYYMM_thumbnail.png`` and ``YYYYMM_v.qml``;
2. ``items/<product-id>-YYYYMM.json`` (checksums of the files of step 1),
   after the ``gvfuse_stac_item_ready`` event lets plugins amend the item;
3. ``cube.zarr``, the CF time cube of every published month (:mod:`gvfuse.publish.cube`);
4. ``collection.json`` (links every item in ``items/``, the cube as an asset recording the checksum
   and size of each of its files);
5. ``catalog.yaml`` (intake, rebuilt from the items, with the cube's entry).

A month is published all or nothing: steps 1 and 2 are made in a staging
folder inside the publication folder (``.staging-*``) and only when all of
them exist — the event hook included — are they renamed into place; a
failure leaves the publication as it was. Ctrl-C (SIGINT) while they are made
stops there, the same; from the first rename to ``catalog.yaml`` it is held
(:func:`gvfuse.io.atomic.uninterrupted`) and raised once the month and its
indexes are all in place, as
:class:`~gvfuse.io.atomic.InterruptedAfterCommit`. One process publishes into a
folder at a time (an advisory lock on the folder itself; a second one is refused with
:class:`~gvfuse.errors.OutputBusyError`), and staging folders and temporary
files left by a killed run are removed when the next one starts. Every file
is written atomically. A month that exists (any of its files or its item) is refused with
:class:`~gvfuse.errors.OutputExistsError` before anything is written, unless
``force=True``; so is one whose folders (the publication, ``items/``,
``cube.zarr``) do not all take a new file (:func:`refuse_unwritable`). The
collection and the intake catalog are indexes of what is
published and are rewritten every time, as is the cube (made in the staging
folder and renamed into place). Publishing the same product again
(with ``force=True``) gives byte-identical files. Every path written is first
resolved (links followed) and must lie inside the publication folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gvfuse.errors import InputError, OutputBusyError, OutputExistsError
from gvfuse.io.atomic import confined, uninterrupted, unwritable_reason, write_text_atomic
from gvfuse.io.checksums import file_fields
from gvfuse.model import Month, MonthlyProduct
from gvfuse.plugins import PluginSet
from gvfuse.product import ProductDefinition
from gvfuse.publish.cog import cog_names, quicklook_name, style_name, thumbnail_name, write_product_cogs
from gvfuse.publish.cube import CUBE_DIR, cube_asset, write_cube
from gvfuse.publish.intake import INTAKE_FILE, write_intake_catalog
from gvfuse.publish.provenance import provenance_block
from gvfuse.publish.quicklook import write_quicklooks, write_speed_style
from gvfuse.publish.stac import (
    COLLECTION_FILE,
    MonthFiles,
    build_collection,
    build_item,
    item_path,
    published_items,
    stac_json,
)

DEFAULT_VERSION = "1"


def month_files(month: Month) -> MonthFiles:
    """The month's product file names, relative to the publication folder."""
    return MonthFiles(cogs=cog_names(month), quicklook=quicklook_name(month), thumbnail=thumbnail_name(month),
                      style=style_name(month))


def refuse_existing(destination: Path, paths: list[Path]) -> None:
    """Raise :class:`OutputExistsError` naming every path of ``paths`` that exists."""
    existing = [p for p in paths if p.exists()]
    if existing:
        names = ", ".join(str(p.relative_to(destination)) for p in existing)
        raise OutputExistsError(f"{destination}: already published ({names}); use --force to replace")


def refuse_unwritable(destination: Path, folders: list[Path], month: Month) -> None:
    """Raise :class:`InputError` naming the first folder of ``folders`` that exists and takes no new file
    (:func:`gvfuse.io.atomic.unwritable_reason`): found before anything is made, since a read-only
    ``items/`` or ``cube.zarr`` would stop the renames half-way (files without their item)."""
    for folder in folders:
        if folder.is_dir() and (reason := unwritable_reason(folder)) is not None:
            raise InputError(f"cannot write into {folder} ({reason}); nothing of {month} was published",
                             source=destination)


#: Prefix of the staging folders a month is made in before it is renamed into place.
STAGING_PREFIX = ".staging-"


@contextlib.contextmanager
def publication_lock(destination: Path) -> Iterator[None]:
    """Hold the folder's publication lock, after removing what a killed run left there.

    Leftovers of a killed run (staging folders, ``.*.tmp`` files of atomic
    writes) are removed first: under the lock no other process is writing them.
    """
    destination.mkdir(parents=True, exist_ok=True)
    lock = os.open(destination, os.O_RDONLY)  # the folder itself is locked: no lock file is left behind
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(f"{destination}: another gvfuse process is publishing here; "
                                  "run again when it has finished") from None
        for stale in destination.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        for folder in (destination, destination / "items"):
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        yield
    finally:
        os.close(lock)  # releases the lock


def remove_leftovers(destination: Path) -> None:
    """What a killed run left in a publication folder, removed now (a run with nothing to publish
    would leave it); nothing when the folder does not exist or another process is publishing there."""
    if destination.is_dir():
        with contextlib.suppress(OutputBusyError), publication_lock(destination):
            pass


@contextlib.contextmanager
def publishing_into(destination: Path) -> Iterator[Path]:
    """Hold the folder's publication lock (:func:`publication_lock`) and a fresh staging folder inside it;
    the staging folder is removed either way."""
    with publication_lock(destination):
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=destination))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, destination: Path, names: list[str]) -> list[Path]:
    """Rename each staged file onto its place in ``destination`` (same file system: each rename atomic)."""
    moved = []
    for name in names:
        target = confined(destination, destination / name)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
        moved.append(target)
    return moved


def _stage_month_files(product: MonthlyProduct, staging: Path, title: str,
                       definition: ProductDefinition | None) -> list[str]:
    """Write the month's files into ``staging``, in the legend and colour scale of ``definition`` (``None``:
    the month's own legend and its 99th-percentile scale)."""
    files = month_files(product.month)
    legend = [s.name for s in definition.legend(product.sensors)] if definition else list(product.sensors)
    speed_max = definition.speed_max_m_per_day if definition else None
    write_product_cogs(product, staging, legend)
    write_quicklooks(product, staging / files.quicklook, staging / files.thumbnail, title=title,
                     speed_max_m_per_day=speed_max)
    names = list(files.all)
    if speed_max is None:
        names.remove(files.style)  # no fixed scale, no style
    else:
        write_speed_style(staging / files.style, speed_max)
    return names


def write_month_files(
    product: MonthlyProduct, destination: str | Path, *, force: bool = False, title: str = "",
    definition: ProductDefinition | None = None,
) -> list[Path]:
    """Step 1 only: the COGs, quick-look, thumbnail and style (for the ``cog`` publisher), all or nothing."""
    destination = Path(destination)
    files = month_files(product.month)
    targets = [confined(destination, destination / name) for name in files.all]
    if not force:
        refuse_existing(destination, targets)
    with publishing_into(destination) as staging:
        names = _stage_month_files(product, staging, title, definition)
        with uninterrupted():
            return _move_into_place(staging, destination, names)


def write_collection(definition: ProductDefinition, destination: str | Path, *, version: str = DEFAULT_VERSION) -> Path:
    """(Re)write ``collection.json`` linking every item present in ``items/`` (and the cube, when there is one,
    with the checksum and size of each of its files)."""
    items = published_items(destination)
    cube = confined(destination, Path(destination) / CUBE_DIR)
    assets = {"cube": cube_asset(definition, [str(item["id"]) for item in items], cube)} if cube.is_dir() else {}
    collection = build_collection(definition, items, version=version, assets=assets)
    return write_text_atomic(confined(destination, Path(destination) / COLLECTION_FILE), stac_json(collection),
                             overwrite=True)


def publish_month(
    product: MonthlyProduct,
    definition: ProductDefinition,
    destination: str | Path,
    *,
    force: bool = False,
    plugins: PluginSet,
    version: str = DEFAULT_VERSION,
) -> list[Path]:
    """Publish one month (files, STAC, intake) into ``destination``; return the paths written.

    ``plugins`` receive the ``gvfuse_stac_item_ready`` event before the item is written.
    """
    destination = Path(destination)
    files = month_files(product.month)
    item_file = confined(destination, item_path(destination, definition.id, product.month))
    for name in (*files.all, COLLECTION_FILE, INTAKE_FILE):
        confined(destination, destination / name)  # before anything is written
    if not force:
        refuse_existing(destination, [*(destination / name for name in files.all), item_file])
    refuse_unwritable(destination, [destination, item_file.parent, destination / CUBE_DIR], product.month)
    title = f"{definition.title}: {product.month}"
    with publishing_into(destination) as staging:
        names = _stage_month_files(product, staging, title, definition)
        block = provenance_block(product)
        file_info = {name: file_fields(staging / name) for name in names}
        item = build_item(product, definition, block, files, file_info, version=version)
        plugins.notify("gvfuse_stac_item_ready", item=item, product=product)
        item_name = str(item_file.relative_to(destination))
        (staging / item_name).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(staging / item_name, stac_json(item))
        with uninterrupted():  # from the first rename to the last index: Ctrl-C waits, then stops the run
            written = _move_into_place(staging, destination, [*names, item_name])
            cube = write_cube(destination, definition, staging)
            if cube is not None:  # its files: a publisher returns the files it wrote
                written.extend(sorted(p for p in cube.rglob("*") if p.is_file()))
            written.append(write_collection(definition, destination, version=version))
            written.append(write_intake_catalog(destination, title=definition.title))
    return written
