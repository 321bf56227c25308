"""Who looks at the dashboard: in keys mode, the owner of the API key the browser signed in
with (kept in an HttpOnly, SameSite=Strict cookie; an ``Authorization: Bearer`` header works
too), checked on every request exactly as the JSON API checks its header."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from api.auth import Principal, principal_for_key
from api.deps import SettingsDep
from api.errors import AuthenticationError

COOKIE = "hpsearch_key"
#: a signed-in browser keeps its key this long (the key's own expiry still applies).
COOKIE_MAX_AGE_S = 7 * 24 * 3600


class SignInRequired(Exception):
    """A page asked for without a valid key: the browser is sent to the sign-in page."""

    def __init__(self, next_path: str, reason: str | None) -> None:
        super().__init__(reason)
        self.next_path = next_path
        self.reason = reason

    @property
    def location(self) -> str:
        return f"/login?next={quote(self.next_path, safe='/')}"


def presented_key(request: Request) -> str | None:
    """The key the browser sends: its header's, else its cookie's."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(COOKIE) or None


def data_viewer(request: Request, settings: SettingsDep) -> Principal:
    """The viewer of a live-data request; 401 JSON without a valid key."""
    return principal_for_key(request, settings, presented_key(request))


def page_viewer(request: Request, settings: SettingsDep) -> Principal:
    """The viewer of a page; without a valid key, a redirect to the sign-in page."""
    try:
        return principal_for_key(request, settings, presented_key(request))
    except AuthenticationError as error:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        had_key = presented_key(request) is not None
        raise SignInRequired(path, str(error.detail) if had_key else None) from None


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of this service only (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


PageViewer = Annotated[Principal, Depends(page_viewer)]
DataViewer = Annotated[Principal, Depends(data_viewer)]
