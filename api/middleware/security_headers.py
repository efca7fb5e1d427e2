"""Security headers on every response, as a plain ASGI middleware.

Every response gets `X-Content-Type-Options: nosniff`. HTML pages also get a strict
Content-Security-Policy (same-origin scripts, styles and images only; no plugins, no
framing), `X-Frame-Options: DENY` and `Referrer-Policy: same-origin` (the API documentation
too: its Swagger UI and ReDoc assets are served from this origin, with no inline script). One
exception: the related-articles fragment (`GET /v1/articles/{slug}/related.html`) is made to be
embedded in publishers' pages (ESI, or an iframe), so it gets no framing ban and no CSP, which
would describe the publisher's page, not ours.

A header the response already carries is left as the route set it. Caching headers are the
routes' own business.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Header = tuple[bytes, bytes]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: What every response carries, as a `headers` argument of a Starlette response.
NOSNIFF_HEADERS = {"X-Content-Type-Options": "nosniff"}
NOSNIFF: Header = (b"x-content-type-options", b"nosniff")
REFERRER_POLICY: Header = (b"referrer-policy", b"same-origin")
NO_FRAMING: Header = (b"x-frame-options", b"DENY")
CSP: Header = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())

#: The embeddable fragment's path is `FRAGMENT_PREFIX + slug + FRAGMENT_SUFFIX`.
FRAGMENT_PREFIX, FRAGMENT_SUFFIX = "/v1/articles/", "/related.html"

_ANY: tuple[Header, ...] = (NOSNIFF,)
_PAGE: tuple[Header, ...] = (NOSNIFF, CSP, NO_FRAMING, REFERRER_POLICY)
_FRAGMENT: tuple[Header, ...] = (NOSNIFF, REFERRER_POLICY)


def _headers_for(path: str, content_type: bytes) -> tuple[Header, ...]:
    """The security headers of a response to `path` with this content type."""
    if not content_type.lower().startswith(b"text/html"):
        return _ANY
    if path.startswith(FRAGMENT_PREFIX) and path.endswith(FRAGMENT_SUFFIX):
        return _FRAGMENT
    return _PAGE


def security_headers(app: ASGIApp) -> ASGIApp:
    """`app` with security headers added to each response."""

    async def secured(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Any iterable in ASGI, read twice here; names are lowercase.
                headers = list(message.get("headers", ()))
                present = {name for name, _ in headers}
                content_type = next((v for n, v in headers if n == b"content-type"), b"")
                added = _headers_for(scope["path"], content_type)
                message["headers"] = [*headers, *(h for h in added if h[0] not in present)]
            await send(message)

        await app(scope, receive, send_secured)

    return secured
