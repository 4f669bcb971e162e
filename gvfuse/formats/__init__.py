"""Sensor product formats: metadata parsing and band loading as plain functions.

One module per provider format, plus the pieces they share:

* :mod:`~gvfuse.formats.containers` — a scene as a folder, ``.zip`` or ``.tar``:
  list members without extracting, read small members, GDAL ``/vsizip/`` and
  ``/vsitar/`` paths for rasters.
* :mod:`~gvfuse.formats.safexml` — untrusted XML through defusedxml, errors
  naming the file and the field.
* :mod:`~gvfuse.formats.loading` — one band onto a target grid with a windowed
  read and ``rasterio.warp.reproject`` (map-georeferenced or GCP-georeferenced).
* :mod:`~gvfuse.formats.landsat`, :mod:`~gvfuse.formats.sentinel2`,
  :mod:`~gvfuse.formats.sentinel1`, :mod:`~gvfuse.formats.uav`,
  :mod:`~gvfuse.formats.geotiff` — the providers' formats.

The reader plugin classes (``gvfuse_plugins.readers``) are thin wrappers
around these functions.
"""
