"""XML parsing that refuses entity expansion (billion laughs) and external entities."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_tree
from defusedxml import DefusedXmlException

from recommender.errors import FeedError


def parse_xml(body: bytes, source: str) -> Element:
    """The document's root element; FeedError for XML that is malformed or declares entities."""
    root = read_xml(body, source)
    if root is None:
        raise FeedError(f"{source}: not well-formed XML")
    return root


def read_xml(body: bytes, source: str) -> Element | None:
    """The root element, or None when the XML is not well-formed (feedparser may still read it);
    FeedError when it declares entities or external references, well-formed or not."""
    try:
        return safe_tree.fromstring(body)
    except DefusedXmlException as exc:
        raise FeedError(f"{source}: refused: the XML declares entities ({exc!r})") from None
    except ParseError:
        if b"<!entity" in body.lower():
            raise FeedError(f"{source}: refused: malformed XML that declares entities") from None
        return None
