"""The dashboard's static files, served from memory and compressed once: the charting library's
megabyte is never gzipped again per request (compressing it on the event loop stalled every
other request for tens of milliseconds). URLs carry a content hash (``asset_url``), so browsers
keep them for a year."""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

STATIC = Path(__file__).parent / "static"
STATIC_URL = "/static/ui"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    """One static file: as is, gzipped, its type and its ETag."""

    raw: bytes
    gzipped: bytes
    media_type: str
    etag: str


@cache
def asset(name: str) -> Asset | None:
    """The file ``name`` of the static folder (no subfolders, nothing outside it), or None."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return None
    raw = path.read_bytes()
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith("javascript"):
        media_type += "; charset=utf-8"
    etag = '"' + hashlib.sha256(raw).hexdigest()[:16] + '"'
    return Asset(raw, gzip.compress(raw, compresslevel=9, mtime=0), media_type, etag)


def accepts_gzip(request: Request) -> bool:
    """Whether the client takes a gzip body."""
    return "gzip" in request.headers.get("accept-encoding", "").lower()


@router.get(STATIC_URL + "/{name}")
def static_file(name: str, request: Request) -> Response:
    """A static file of the dashboard; 304 when the browser's copy is current."""
    found = asset(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": found.etag,
               "Vary": "Accept-Encoding"}  # fmt: skip
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    if accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type=found.media_type, headers=headers)
    return Response(found.raw, media_type=found.media_type, headers=headers)
