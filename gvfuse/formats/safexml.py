"""Parsing provider XML (SAFE manifests, Sentinel metadata, Landsat MTL.xml) safely.

SAFE and MTL metadata come from downloads, so they are untrusted input: every
document goes through defusedxml, which refuses entity declarations (the
"billion laughs" expansion) and external entities/DTDs. Any parse failure,
hostile construct or missing element becomes a :class:`MetadataError` that
names the file and the field, so a user knows which download is broken.

Element lookups ignore XML namespaces (compare local names): the providers
change namespace URIs between processing baselines (``psd-14``, ``psd-15`` ...)
while element names stay the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_et

from gvfuse.errors import MetadataError, excerpt


def local_name(tag: str) -> str:
    """``{namespace}name`` → ``name``."""
    return tag.rsplit("}", 1)[-1]


def parse_xml(data: bytes, source: object) -> Element:
    """The root element of an untrusted XML document.

    DTDs are refused outright (``forbid_dtd``): no provider format uses one, and
    refusing them also stops entity expansion and external-entity attacks before
    any expansion happens.
    """
    if not data.strip():
        raise MetadataError("metadata file is empty", source=source, field="document")
    try:
        return safe_et.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as exc:
        raise MetadataError("refusing XML with a DTD (possible entity-expansion or external-entity attack)",
                            source=source, field="DOCTYPE") from exc
    except defusedxml.EntitiesForbidden as exc:
        raise MetadataError(f"refusing XML entity declaration {exc.name!r} (possible entity-expansion attack)",
                            source=source, field="ENTITY") from exc
    except defusedxml.DefusedXmlException as exc:
        raise MetadataError(f"refusing hostile XML: {exc}", source=source, field="document") from exc
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        raise MetadataError(f"malformed or truncated XML (line {line}, column {column}): {exc}",
                            source=source, field="document") from exc


def iter_named(root: Element, name: str) -> Iterator[Element]:
    """Every descendant element (and root itself) whose local name is ``name``."""
    for element in root.iter():
        if local_name(element.tag) == name:
            yield element


def find_named(root: Element, name: str) -> Element | None:
    """The first element with local name ``name``, or None."""
    return next(iter_named(root, name), None)


def required_text(root: Element, name: str, source: object, *, field: str | None = None) -> str:
    """The stripped text of the first ``name`` element; a :class:`MetadataError` if absent or empty."""
    element = find_named(root, name)
    text = (element.text or "").strip() if element is not None else ""
    if not text:
        problem = "missing" if element is None else "empty"
        raise MetadataError(f"required element <{name}> is {problem}", source=source, field=field or name)
    return text


def optional_text(root: Element, name: str) -> str | None:
    """The stripped text of the first ``name`` element, or None when absent or empty."""
    element = find_named(root, name)
    text = (element.text or "").strip() if element is not None else ""
    return text or None


def required_float(root: Element, name: str, source: object, *, field: str | None = None) -> float:
    """A required element's text as a float; a :class:`MetadataError` naming it when it is not a number."""
    text = required_text(root, name, source, field=field)
    try:
        return float(text)
    except ValueError:
        raise MetadataError(f"<{name}> is not a number: {excerpt(text)}", source=source, field=field or name) from None
