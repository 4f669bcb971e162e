"""The bundled reader plugins: Landsat 8/9 C2L1, Sentinel-2 L1C/L2A, Sentinel-1 GRD, UAV, generic GeoTIFF.

Each class is a thin wrapper around the format functions of
:mod:`gvfuse.formats`; the parsing and loading are tested there.

**How a reader is chosen** when several detect one path: every reader class has
an integer ``priority`` class attribute (absent = 0); the detecting reader with
the highest priority wins, ties broken by name
(:func:`gvfuse.pipeline.scan.choose_reader`). Provider formats with a precise signature
(Landsat, Sentinel-2, Sentinel-1: 100) win over the UAV heuristics (50), which
win over the generic GeoTIFF fallback (0), which accepts any GeoTIFF.

Every ``Scene.metadata`` holds JSON-able values: ``crs`` (``"EPSG:32647"``,
None for radar geometry), ``resolution_m``, ``footprint_lonlat_bounds``
(west, south, east, north degrees) when cheaply known, ``container`` (the folder
or archive the members live in) and the members needed by ``load``, plus the
sensor's own keys (WRS path/row, MGRS tile, relative orbit, pass direction,
polarisation, processing baseline ...).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any, ClassVar

from gvfuse.errors import MetadataError
from gvfuse.formats import landsat, sentinel1, sentinel2, uav
from gvfuse.formats.containers import Container, container_kind
from gvfuse.formats.geotiff import date_from_name, is_geotiff_name, lonlat_bounds, read_header
from gvfuse.formats.loading import MaskBand, default_grid_for_gcps, load_band, load_gcp_band, load_plain_raster
from gvfuse.hookspecs import hookimpl
from gvfuse.interfaces import Reader
from gvfuse.model import Grid, Image, Scene


def _crs_text(grid: Grid | None) -> str | None:
    if grid is None:
        return None
    epsg = grid.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else grid.crs.to_wkt()


def _container_of(scene: Scene) -> Container:
    return Container.open(scene.metadata.get("container", scene.path))


class LandsatReader(Reader):
    """Landsat 8/9 OLI Collection 2 Level-1: band 8 (15 m), QA_PIXEL clouds as NaN."""

    name = "landsat"
    sensor = "landsat"
    description = "Landsat 8/9 OLI Collection 2 Level-1 (folder, .tar or MTL file): band 8, QA_PIXEL cloud mask"
    priority: ClassVar[int] = 100

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        kind = container_kind(path)
        if kind == "folder":
            return any(landsat.PRODUCT_ID_RE.match(p.name[: -len(s)])
                       for s in landsat.MTL_SUFFIXES for p in path.glob(f"*{s}"))
        if kind == "tar":
            # USGS names the bundle <product id>.tar; tar has no index, so no member listing here.
            stem = re.sub(r"\.(tar|tar\.gz|tgz)$", "", path.name, flags=re.I)
            return bool(landsat.PRODUCT_ID_RE.match(stem))
        return path.is_file() and any(path.name.endswith(s) and landsat.PRODUCT_ID_RE.match(path.name[: -len(s)])
                                      for s in landsat.MTL_SUFFIXES)

    def open(self, path: Path) -> Scene:
        path = Path(path)
        if container_kind(path) is None:  # an MTL file: its folder is the container
            container, member = Container.open(path.parent), path.name
        else:
            container, member = Container.open(path), None
        meta, mtl_member = landsat.read_landsat(container, member)
        product = meta.product
        band_member = landsat.member_beside(mtl_member, meta.band8_file)
        qa_member = landsat.member_beside(mtl_member, meta.qa_pixel_file) if meta.qa_pixel_file else None
        for member in (band_member, qa_member):
            if member is not None:
                container.member_path(member)  # stays inside the scene (no link to a file elsewhere)
        return Scene(
            sensor=self.sensor, platform=product.platform, scene_id=product.product_id,
            acquired_at=meta.acquired_at, path=path, reader=self.name,
            cloud_cover_percent=meta.cloud_cover_percent, grid=meta.band8_grid,
            metadata={
                "spacecraft": meta.spacecraft, "processing_level": product.level,
                "wrs_path": product.wrs_path, "wrs_row": product.wrs_row,
                "processed_on": product.processed_on.isoformat(), "collection": product.collection,
                "tier": product.tier, "preference": landsat.TIER_PREFERENCE[product.tier],
                "crs": f"EPSG:{meta.crs_epsg}", "resolution_m": meta.band8_grid.pixel_size_m[0],
                "footprint_lonlat_bounds": meta.footprint_lonlat_bounds, "container": str(container.path),
                "mtl_member": mtl_member, "band_member": band_member, "qa_pixel_member": qa_member,
            },
        )

    def load(self, scene: Scene, grid: Grid | None = None) -> Image:
        container = _container_of(scene)
        qa = scene.metadata.get("qa_pixel_member")
        mask = MaskBand(container.gdal_path(qa), landsat.qa_pixel_unusable) if qa else None
        band = scene.metadata["band_member"]
        return load_band(container.gdal_path(band), grid, nodata_values=(landsat.FILL_DN,), mask=mask,
                         source=container.describe(band))


class Sentinel2Reader(Reader):
    """Sentinel-2 MSI L1C/L2A: band 8 (10 m) as reflectance with the baseline offset applied; L2A SCL clouds as NaN."""

    name = "sentinel-2"
    sensor = "sentinel-2"
    description = "Sentinel-2 MSI L1C/L2A (.SAFE folder or .zip): band 8 reflectance, L2A SCL cloud mask"
    priority: ClassVar[int] = 100

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        kind = container_kind(path)
        if kind == "folder":
            return any((path / n).is_file() for n in ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml"))
        if kind == "zip":
            if sentinel2.parse_product_name(path.name):
                return True
            try:  # renamed zip: the central directory is cheap to read
                with zipfile.ZipFile(path) as archive:
                    return any(n.split("/")[-1] in ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml") and n.count("/") <= 1
                               for n in archive.namelist())
            except (zipfile.BadZipFile, OSError):
                return False
        return False

    def open(self, path: Path) -> Scene:
        container = Container.open(path)
        meta = sentinel2.read_sentinel2(container)
        return Scene(
            sensor=self.sensor, platform=meta.spacecraft.lower(), scene_id=meta.product_name,
            acquired_at=meta.acquired_at, path=Path(path), reader=self.name,
            cloud_cover_percent=meta.cloud_cover_percent, grid=meta.band8_grid,
            metadata={
                "processing_level": meta.level, "processing_baseline": meta.processing_baseline,
                "preference": sentinel2.LEVEL_PREFERENCE[meta.level],
                "mgrs_tile": meta.mgrs_tile, "relative_orbit": meta.relative_orbit,
                "orbit_direction": meta.orbit_direction, "band8_offset_dn": meta.band8_offset_dn,
                "quantification_value": meta.quantification_value, "crs": f"EPSG:{meta.crs_epsg}",
                "resolution_m": meta.band8_grid.pixel_size_m[0],
                "footprint_lonlat_bounds": meta.footprint_lonlat_bounds,
                "container": str(container.path), "band_member": meta.band8_member, "scl_member": meta.scl_member,
            },
        )

    def load(self, scene: Scene, grid: Grid | None = None) -> Image:
        container = _container_of(scene)
        offset, quantification = float(scene.metadata["band8_offset_dn"]), float(scene.metadata["quantification_value"])
        scl = scene.metadata.get("scl_member")
        mask = MaskBand(container.gdal_path(scl), sentinel2.scl_unusable) if scl else None
        band = scene.metadata["band_member"]
        return load_band(
            container.gdal_path(band), grid, nodata_values=(sentinel2.NODATA_DN,),
            dn_to_value=lambda dn: sentinel2.dn_to_reflectance(dn, offset, quantification),
            mask=mask, source=container.describe(band),
        )


class Sentinel1Reader(Reader):
    """Sentinel-1 GRD IW (SAFE folder/zip, warped through its GCPs) and terrain-corrected S1 GeoTIFFs."""

    name = "sentinel-1"
    sensor = "sentinel-1"
    description = "Sentinel-1 GRD IW (.SAFE folder or .zip, GCP-warped) and terrain-corrected Sentinel-1 GeoTIFFs"
    priority: ClassVar[int] = 100
    #: Polarisation loaded when a product has several (co-polarised VV gives the stronger return on ice).
    preferred_polarisations: ClassVar[tuple[str, ...]] = ("VV", "HH", "VH", "HV")

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        kind = container_kind(path)
        if kind == "folder":
            return path.name.startswith("S1") and (path / "manifest.safe").is_file()
        if kind == "zip":
            return bool(sentinel1.PRODUCT_NAME_RE.match(path.name))
        return is_geotiff_name(path) and sentinel1.parse_terrain_corrected_name(path.name) is not None

    def _pick(self, available: tuple[str, ...] | list[str]) -> str:
        for pol in self.preferred_polarisations:
            if pol in available:
                return pol
        return sorted(available)[0]

    def open(self, path: Path) -> Scene:
        path = Path(path)
        if container_kind(path) is None:
            return self._open_terrain_corrected(path)
        container = Container.open(path)
        meta = sentinel1.read_sentinel1(container)
        polarisation = self._pick(list(meta.measurements))
        return Scene(
            sensor=self.sensor, platform=meta.platform, scene_id=meta.product_name, acquired_at=meta.start_time,
            path=path, reader=self.name, cloud_cover_percent=None, grid=None,
            metadata={
                "format": "grd-safe", "mode": meta.mode, "product_type": meta.product_type,
                "stop_time": meta.stop_time.isoformat(), "pass_direction": meta.pass_direction,
                "polarisations": list(meta.polarisations), "polarisation": polarisation,
                "relative_orbit": meta.relative_orbit, "absolute_orbit": meta.absolute_orbit,
                "mission_data_take_id": meta.mission_data_take_id, "crs": None,
                "resolution_m": meta.pixel_spacing_m, "footprint_lonlat_bounds": meta.footprint_lonlat_bounds,
                "container": str(container.path), "band_member": meta.measurements[polarisation],
            },
        )

    def _open_terrain_corrected(self, path: Path) -> Scene:
        header = read_header(path)
        parsed = sentinel1.parse_terrain_corrected_name(path.name, header.tags)
        if parsed is None:
            raise MetadataError("name is not a Sentinel-1 product name", source=path, field="file name")
        if header.grid is None:
            raise MetadataError("not map-projected (a radar-geometry TIFF belongs in its SAFE product)",
                                source=path, field="crs")
        return Scene(
            sensor=self.sensor, platform=parsed.platform, scene_id=path.stem, acquired_at=parsed.start_time,
            path=path, reader=self.name, cloud_cover_percent=None, grid=header.grid,
            metadata={
                "format": "terrain-corrected", "product_name": parsed.product_name,
                "polarisation": parsed.polarisation, "relative_orbit": parsed.relative_orbit,
                "absolute_orbit": parsed.absolute_orbit, "pass_direction": None,
                "crs": _crs_text(header.grid), "resolution_m": header.grid.pixel_size_m[0],
                "footprint_lonlat_bounds": lonlat_bounds(header.grid),
            },
        )

    def load(self, scene: Scene, grid: Grid | None = None) -> Image:
        if scene.metadata.get("format") == "terrain-corrected":
            # Terrain-corrected backscatter is never exactly 0: SNAP and HyP3 write 0 as no data.
            return load_band(str(scene.path), grid, nodata_values=(0,), source=str(scene.path))
        container = _container_of(scene)
        band = container.gdal_path(scene.metadata["band_member"])
        if grid is None:
            grid = default_grid_for_gcps(band, float(scene.metadata.get("resolution_m") or 10.0))
        return load_gcp_band(band, grid, source=container.describe(scene.metadata["band_member"]))


def _geotiff_scene(path: Path, sensor: str, reader: str, when: Any, time_source: str,
                   platform: str, extra: dict[str, Any]) -> Scene:
    header = read_header(path)
    if header.grid is None:
        raise MetadataError("GeoTIFF has no map CRS/transform", source=path, field="crs")
    return Scene(
        sensor=sensor, platform=platform, scene_id=path.stem, acquired_at=when, path=path, reader=reader,
        grid=header.grid,
        metadata={"crs": _crs_text(header.grid), "resolution_m": header.grid.pixel_size_m[0],
                  "footprint_lonlat_bounds": lonlat_bounds(header.grid), "time_source": time_source,
                  "band_count": header.count, **extra},
    )


class UavReader(Reader):
    """Drone orthomosaics (GeoTIFF, any CRS); date from a sidecar, a TIFF tag or the name (see gvfuse.formats.uav)."""

    name = "uav"
    sensor = "uav"
    description = "UAV orthomosaic GeoTIFF (any CRS); date from sidecar <name>.json/.txt, TIFF tag or file name"
    priority: ClassVar[int] = 50
    band_selectable: ClassVar[bool] = True

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        if not (path.is_file() and is_geotiff_name(path)):
            return False
        try:
            header = read_header(path)
        except MetadataError:
            return False
        return header.grid is not None and uav.looks_like_uav(path, header)

    def open(self, path: Path) -> Scene:
        path = Path(path)
        header = read_header(path)
        when, source, extra = uav.acquisition_time(path, header)
        return _geotiff_scene(path, self.sensor, self.name, when, source, extra.get("platform", "uav"), extra)

    def load(self, scene: Scene, grid: Grid | None = None) -> Image:
        # RGB(A) orthomosaics: track on green (the band with the most signal and the
        # least noise in consumer cameras) unless a band is chosen; the alpha band, when
        # present, marks no data, and a fill the tag does not declare is found in the data.
        count = int(scene.metadata.get("band_count", 1))
        band = int(scene.metadata.get("band") or (2 if count >= 3 else 1))
        mask = MaskBand(str(scene.path), lambda alpha: alpha == 0, band=4) if count == 4 else None
        return load_band(str(scene.path), grid, band=band, mask=mask, source=str(scene.path), detect_fill=True)


class GeoTiffReader(Reader):
    """Any map-projected GeoTIFF, dated by its file name: the fallback reader (priority 0)."""

    name = "geotiff"
    sensor = "geotiff"
    description = "Generic GeoTIFF (fallback): band 1, acquisition date from the file name (YYYYMMDD, YYYY-MM-DD)"
    priority: ClassVar[int] = 0
    catch_all: ClassVar[bool] = True
    band_selectable: ClassVar[bool] = True

    @classmethod
    def detect(cls, path: Path) -> bool:
        path = Path(path)
        return path.is_file() and is_geotiff_name(path)

    def open(self, path: Path) -> Scene:
        path = Path(path)
        when = date_from_name(path.name)
        if when is None:
            raise MetadataError("no date (YYYYMMDD or YYYY-MM-DD) in the file name", source=path, field="file name")
        return _geotiff_scene(path, self.sensor, self.name, when, "file name", "unknown", {})

    def load(self, scene: Scene, grid: Grid | None = None) -> Image:
        return load_plain_raster(scene.path, grid, band=scene.metadata.get("band"))


READERS: tuple[type[Reader], ...] = (LandsatReader, Sentinel2Reader, Sentinel1Reader, UavReader, GeoTiffReader)


@hookimpl
def gvfuse_register_readers() -> list[type[Reader]]:
    return list(READERS)
