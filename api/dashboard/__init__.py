"""The browser dashboard, served by the API itself: server-rendered pages (``pages``), the
live JSON they poll (``data``), plots built on the server (``figures``), one owner's view of
everything (``session``). Its assets are served from the package: no CDN, no Node build."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.dashboard import assets, data, pages
from api.dashboard.session import SignInRequired


class DashboardGZip:
    """Gzip for the dashboard's pages, data and assets; the JSON API's responses (and model
    downloads) pass untouched."""

    def __init__(self, app: ASGIApp, api_prefix: str) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024, compresslevel=5)
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self.api_prefix):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: FastAPI, api_prefix: str) -> None:
    """Serve the dashboard's pages at ``/``, its data under ``/ui/data``, assets under
    ``/static/ui``."""
    app.include_router(assets.router)
    app.include_router(pages.router)
    app.include_router(data.router)
    app.add_middleware(DashboardGZip, api_prefix=api_prefix)

    @app.exception_handler(SignInRequired)
    def sign_in(request: Request, error: SignInRequired) -> RedirectResponse:
        return RedirectResponse(error.location, status_code=303)
