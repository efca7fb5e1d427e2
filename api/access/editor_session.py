"""Editors' login: a signed session cookie (HttpOnly, SameSite=Strict) carrying the session's
id, the editor's name, its expiry and a CSRF token that every form must echo.

The signing key is `RECOMMENDER_SESSION_SECRET`, or is derived from the editors' password, so
every worker and replica accepts the same cookies. A cookie is honoured only while its session is
open in the shared `SessionStore`: logging out revokes it, and changing the password (or the
secret) ends every session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated

import orjson
from fastapi import Depends, Form, Request
from starlette.responses import Response

from api.deps import ServicesDep
from index.state.session_store import SessionStore
from recommender.settings import EditorSettings

COOKIE = "editor_session"
LOGIN_COOKIE = "editor_login_csrf"
PATH = "/editor"


class LoginRequired(Exception):
    """The page needs a logged-in editor; answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A form came without the session's CSRF token (answered 403)."""


class EditorsDisabled(Exception):
    """Neither an editors' password nor an admin token is configured (answered 503)."""


@dataclass(frozen=True, slots=True)
class EditorSession:
    id: str
    name: str
    expires: float
    csrf: str


def password(settings: EditorSettings) -> bytes:
    configured = settings.editor_password or settings.admin_token
    if configured is None:
        raise EditorsDisabled
    return configured.get_secret_value().encode()


def _key(settings: EditorSettings) -> bytes:
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    return hmac.new(password(settings), b"editor session key", hashlib.sha256).digest()


def _sign(settings: EditorSettings, payload: bytes) -> str:
    return hmac.new(_key(settings), payload, hashlib.sha256).hexdigest()


def _credentials(settings: EditorSettings) -> str:
    """A fingerprint of the editors' password and the signing key (no password in the store)."""
    offered = b"credentials:" + password(settings)
    return hmac.new(_key(settings), offered, hashlib.sha256).hexdigest()


def password_matches(settings: EditorSettings, offered: str) -> bool:
    return hmac.compare_digest(offered.encode(), password(settings))


def csrf_token() -> str:
    return secrets.token_hex(16)


def issue(settings: EditorSettings, sessions: SessionStore, name: str) -> tuple[EditorSession, str]:
    """A new session for `name`, opened in `sessions`, and its cookie value."""
    session = EditorSession(
        secrets.token_urlsafe(24),
        name,
        sessions.clock() + settings.session_hours * 3600,
        csrf_token(),
    )
    sessions.open(session.id, session.name, session.expires, _credentials(settings))
    payload = base64.urlsafe_b64encode(
        orjson.dumps({"s": session.id, "n": session.name, "x": session.expires, "c": session.csrf})
    )
    return session, f"{payload.decode()}.{_sign(settings, payload)}"


def read(
    settings: EditorSettings, sessions: SessionStore, cookie: str | None
) -> EditorSession | None:
    """The session a cookie carries, or None when it is missing, forged, expired or ended."""
    if not cookie or "." not in cookie:
        return None
    payload, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature, _sign(settings, payload.encode())):
        return None
    try:
        fields = orjson.loads(base64.urlsafe_b64decode(payload))
        session = EditorSession(
            str(fields["s"]), str(fields["n"]), float(fields["x"]), str(fields["c"])
        )
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires <= sessions.clock():
        return None
    return session if sessions.is_open(session.id, _credentials(settings)) else None


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def current_editor(request: Request, services: ServicesDep) -> EditorSession:
    """The logged-in editor; anyone else is sent to the login page."""
    cookie = request.cookies.get(COOKIE)
    session = await services.holder.call_store(
        lambda: read(services.settings.editor, services.sessions, cookie)
    )
    if session is None:
        password(services.settings.editor)  # 503 rather than a login page nobody can pass
        raise LoginRequired(request.url.path)
    return session


EditorDep = Annotated[EditorSession, Depends(current_editor)]


def checked_editor(editor: EditorDep, csrf: Annotated[str, Form(max_length=100)] = "") -> str:
    """The name of the logged-in editor who sent a form carrying the session's CSRF token."""
    if not hmac.compare_digest(csrf.encode(), editor.csrf.encode()):
        raise CsrfRejected
    return editor.name


EditorFormDep = Annotated[str, Depends(checked_editor)]
