"""gvfuse: multi-sensor glacier surface velocity, from image pairs to published monthly maps.

Plugins mark their hook implementations with :data:`gvfuse.hookimpl`.
"""

from gvfuse.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
