"""The processing stages in data-flow order: scan, pairing, pair, regrid, month, validate, run.

Each module is one stage; :mod:`gvfuse.pipeline.run` chains them for a whole
run (plan, dask, resume). ``gvfuse track`` and ``gvfuse validate`` call the
same stages (:mod:`~gvfuse.pipeline.pair`, :mod:`~gvfuse.pipeline.validate`)
on single files.
"""
