"""Every error gvfuse raises on purpose.

Each error says which input is at fault and what was expected, so the CLI can
print it as it is and exit non-zero.
"""

from __future__ import annotations


class GvfuseError(Exception):
    """Base class of every error gvfuse raises on purpose."""


class InputError(GvfuseError):
    """An input file or value is missing, malformed or unusable.

    ``source`` names the file (or option) and ``field`` the part of it at fault.
    """

    def __init__(self, message: str, *, source: object = None, field: str | None = None) -> None:
        self.source = source
        self.field = field
        where = ""
        if source is not None:
            where = f"{source}"
            if field:
                where += f" [{field}]"
            where += ": "
        super().__init__(where + message)


class MetadataError(InputError):
    """Provider metadata (MTL, SAFE XML, TIFF tags) is missing, malformed or hostile."""


class GridError(InputError):
    """Rasters do not overlap, or a grid is not usable for the requested work."""


class TrackingError(GvfuseError):
    """Offset tracking cannot produce a trustworthy result for this input."""


class ConfigError(InputError):
    """A run configuration or product definition is invalid."""


class PluginError(GvfuseError):
    """A plugin failed, or plugins conflict. ``plugin`` names the plugin at fault."""

    def __init__(self, message: str, *, plugin: str | None = None) -> None:
        self.plugin = plugin
        prefix = f"plugin {plugin!r}: " if plugin else ""
        super().__init__(prefix + message)


class UnknownComponentError(GvfuseError):
    """A reader, tracker, weighting, validator or publisher name is not registered."""


class OutputExistsError(GvfuseError):
    """A product already exists and would be overwritten without ``--force``."""


class OutputBusyError(GvfuseError):
    """Another gvfuse process is publishing into the same folder."""


#: The longest excerpt of a file's content an error message quotes.
EXCERPT_CHARS = 40


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable quotation of a metadata value for an error message.

    Only values that parsed as metadata are quoted, and only this much of them:
    control characters become ``?`` and anything past ``limit`` characters is
    cut (``...``), so a message never carries a file's content along.
    """
    clean = "".join(c if c.isprintable() else "?" for c in text.strip())
    return repr(clean if len(clean) <= limit else clean[:limit] + "...")
