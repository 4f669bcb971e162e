"""Files: atomic writes, gvfuse rasters, area masks and checksums."""
