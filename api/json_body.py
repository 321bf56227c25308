"""JSON request bodies, read strictly: the media type must say JSON, the bytes must be UTF-8, and
the document must mean one thing.

Python's ``json`` module is lenient where a client's mistake should be told: it guesses UTF-16
and UTF-32, lets the last of two equal keys win, reads ``NaN`` and ``Infinity``, turns ``1e400``
into infinity, and raises a bare ``ValueError`` (a 500 through FastAPI) on an integer of more
than 4300 digits. Here each of those is a 422 ``json_invalid`` naming what was wrong, and a body
that is not declared as ``application/json`` (or ``*/*+json``, charset UTF-8) is a 415. JSON has
one number type: ``10.0`` is read as the integer 10, as JSON Schema's ``integer`` says.

``JsonRoute`` applies this to every route of a router that reads a JSON body: FastAPI's own body
parsing, and the routes that read it themselves (``await request.json()``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.params import Form
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

#: the longest integer literal a body may hold (a spec's largest, a seed, has 10 digits).
MAX_INT_DIGITS = 100
JSON_MEDIA_TYPE = "application/json"


class UnsupportedMediaTypeError(StarletteHTTPException):
    """The body is not declared as UTF-8 JSON."""

    def __init__(self, got: str | None) -> None:
        super().__init__(
            415,
            f"send the body as {JSON_MEDIA_TYPE} (UTF-8); the request said "
            f"{got!r}" + ("" if got else " (no Content-Type)"),
        )


class InvalidJsonError(StarletteHTTPException):
    """The body is not one unambiguous JSON document (a 422, formatted like every validation
    error). An HTTPException so that FastAPI's body reader passes it on unchanged."""

    def __init__(self, message: str) -> None:
        super().__init__(422, message)
        self.message = message


class _Refused(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Refused(f"duplicate key {key[:100]!r} in an object")
        found[key] = value
    return found


def _integer(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(literal)


#: integral numbers up to this size are read as integers, whatever their literal (``10.0``).
EXACT_INTEGERS = 2**53


def _number(literal: str) -> float | int:
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"the number {literal[:40]} is out of range")
    if value.is_integer() and abs(value) <= EXACT_INTEGERS:
        # JSON has one number type: 10.0 is the integer 10 (as JSON Schema's "integer" says), and
        # an integer field takes it; a float field takes an integer anyway.
        return int(value)
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """The one JSON document in ``raw`` (``InvalidJsonError`` otherwise)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJsonError(f"the body is not UTF-8 (byte {error.start})") from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_number,
            parse_constant=_constant,
        )
    except json.JSONDecodeError as error:
        raise InvalidJsonError(f"{error.msg} at character {error.pos}") from None
    except _Refused as error:
        raise InvalidJsonError(str(error)) from None
    except RecursionError:  # "[[[[...": no body nests anywhere near this deep
        raise InvalidJsonError("JSON nested too deeply") from None


def require_json(request: Request) -> None:
    """415 unless the request declares a UTF-8 JSON body."""
    declared = request.headers.get("content-type")
    if declared:
        message = Message()
        message["content-type"] = declared
        kind = message.get_content_type()
        charset = (message.get_param("charset") or "utf-8").lower()  # type: ignore[union-attr]
        is_json = kind == JSON_MEDIA_TYPE or (
            kind.startswith("application/") and kind.endswith("+json")
        )
        if is_json and charset in ("utf-8", "utf8"):
            return
    raise UnsupportedMediaTypeError(declared)


class JsonRequest(Request):
    """A request whose ``json()`` is ``parse_json`` of its body."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


def _reads_json(route: APIRoute) -> bool:
    if route.body_field is not None:
        return not isinstance(route.body_field.field_info, Form)
    content = ((route.openapi_extra or {}).get("requestBody") or {}).get("content") or {}
    return JSON_MEDIA_TYPE in content


class JsonRoute(APIRoute):
    """Routes whose JSON bodies are read by ``parse_json``, after ``require_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not _reads_json(self):
            return handler

        async def strict_handler(request: Request) -> Response:
            require_json(request)
            return await handler(JsonRequest(request.scope, request.receive))

        return strict_handler
