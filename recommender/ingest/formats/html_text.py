"""Text of the HTML fragments feeds and APIs carry (summaries, WordPress content)."""

from __future__ import annotations

import html

import lxml.html
from lxml.etree import ParserError

#: Elements after which a line ends, so paragraphs stay paragraphs.
_BLOCKS = frozenset(
    {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "figure"}
)


def html_to_text(fragment: str) -> str:
    """The readable text of an HTML fragment: one line per paragraph, spaces collapsed."""
    if "<" not in fragment:
        return " ".join(html.unescape(fragment).split())
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ParserError, ValueError):
        return ""
    for element in root.iter():
        if element.tag in _BLOCKS:
            element.tail = "\n" + (element.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)
