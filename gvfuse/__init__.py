"""gvfuse: multi-sensor glacier surface velocity, from image pairs to published monthly maps."""

__version__ = "0.1.0"
