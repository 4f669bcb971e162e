"""Publishing a month: the COG and quick-looks, provenance, STAC, intake, and checking a publication.

:mod:`gvfuse.publish.month` writes one month in order (files, STAC item,
collection, intake catalog); the other modules each make one of those parts.
"""
