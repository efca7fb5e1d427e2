"""The one Jinja2 environment of the HTML pages and fragments (autoescaping always on)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from recommender.articles import has_linkable_scheme

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def safe_href(url: str | None) -> str | None:
    """`url` when it is an http(s) or relative URL a reader may follow, else None (records
    stored before `url` was checked may hold any text)."""
    if not url or " " in url or not has_linkable_scheme(url):
        return None
    return url


environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["safe_href"] = safe_href


def render(template: str, **context: object) -> str:
    """`template` (a file in api/templates) rendered with `context`, HTML-escaped."""
    return environment.get_template(template).render(**context)
