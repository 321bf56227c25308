"""Domain exceptions and the one table that maps them to HTTP statuses and JSON bodies.

Every error body is ``{"error": <code>, "detail": ...}``; validation errors list their fields.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.json_body import InvalidJsonError
from db.transient import DatabaseUnavailableError
from search_spaces.limits import NAME_PATTERN, NAME_RULE

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Base of the errors the services raise; ``detail`` is what the client reads, ``headers``
    go on the response and ``extra`` fields into its body beside ``error`` and ``detail``."""

    headers: dict[str, str] | None = None
    extra: dict[str, Any] | None = None

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        # raised in the dashboard's page-building process, it crosses back to the API whole,
        # whatever its subclass's __init__ takes
        return (_restored, (type(self), self.args, self.__dict__))


def _restored(cls: type[ApiError], args: tuple[Any, ...], state: dict[str, Any]) -> ApiError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class AuthenticationError(ApiError):
    """No API key, or one that is malformed, unknown or revoked."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": "Bearer"}


class QuotaExceededError(ApiError):
    """The owner is at one of its quotas."""

    def __init__(
        self, quota: str, limit: int, used: int, message: str, retry_after_s: int | None
    ) -> None:
        super().__init__(message)
        self.extra = {"quota": quota, "limit": limit, "used": used}
        if retry_after_s is not None:
            self.headers = {"Retry-After": str(retry_after_s)}


class RateLimitedError(ApiError):
    """An API key is over its request rate (``api.rate_limit``)."""

    def __init__(self, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"more than {limit} requests a minute with this API key; retry in {retry_after_s} s"
        )
        self.headers = {"Retry-After": str(retry_after_s)}
        self.extra = {"limit": limit}


class NotFoundError(ApiError):
    """A job, trial or model does not exist."""


#: the longest identifier an error message quotes in full (a job id has 32 characters).
MAX_QUOTED_ID = 64


def quoted_id(value: object) -> str:
    """``value`` quoted for an error message, cut to ``MAX_QUOTED_ID`` characters: a client's
    10,000-character id is not echoed back."""
    text = str(value)
    if len(text) <= MAX_QUOTED_ID:
        return repr(text)
    return f"{text[:MAX_QUOTED_ID]!r}... ({len(text)} characters)"


class ConflictError(ApiError):
    """The request is not allowed in the resource's current state (e.g. cancel a final job)."""


class BrokerUnavailableError(ApiError):
    """The message broker could not be reached in time."""


class PredictionTimeoutError(ApiError):
    """The prediction process did not answer in time."""


class PredictionFailedError(ApiError):
    """The prediction process failed (could not load or run the model)."""


class PageBuildTimeoutError(ApiError):
    """The dashboard's page-building process did not answer in time (it is killed)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the page took longer than {timeout_s:g} s to build; try again")


class InputValidationError(ApiError):
    """A request field is valid JSON but unusable (e.g. rows of the wrong shape)."""

    def __init__(
        self, field: str, message: str, limit: Any = None, type_: str = "invalid_input"
    ) -> None:
        super().__init__(message)
        self.field, self.message, self.limit, self.type = field, message, limit, type_


class RequestTooLargeError(StarletteHTTPException):
    """The body is over ``max_request_bytes``. An HTTPException so FastAPI's body reader passes
    it through instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


#: exception -> (status, error code). The first matching class (in order) wins.
ERROR_TABLE: list[tuple[type[Exception], int, str]] = [
    (AuthenticationError, 401, "unauthorized"),
    (QuotaExceededError, 429, "quota_exceeded"),
    (RateLimitedError, 429, "rate_limited"),
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (InputValidationError, 422, "validation_error"),
    (BrokerUnavailableError, 503, "broker_unavailable"),
    (DatabaseUnavailableError, 503, "database_unavailable"),
    (OperationalError, 503, "database_unavailable"),
    (InterfaceError, 503, "database_unavailable"),
    (PredictionTimeoutError, 504, "prediction_timeout"),
    (PageBuildTimeoutError, 504, "page_build_timeout"),
    (PredictionFailedError, 500, "prediction_failed"),
    (ApiError, 500, "internal_error"),
]

#: Retry-After of a 503 for an unreachable database: a restart or a failover takes seconds.
DATABASE_RETRY_AFTER_S = "5"

#: pydantic's discriminated-union tags in a loc: the spec's param kinds, never field names.
UNION_TAGS = frozenset({"fixed", "choice", "int", "float"})
LOC_ROOTS = frozenset({"body", "query", "path", "header", "cookie"})
LIMIT_KEYS = ("le", "ge", "lt", "gt", "max_length", "min_length", "pattern", "limit")


def error_response(
    status: int,
    code: str,
    detail: Any,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """The uniform error body."""
    content = {"error": code, "detail": detail, **(extra or {})}
    return JSONResponse(status_code=status, content=content, headers=headers)


def dotted_field(loc: Sequence[int | str]) -> str:
    """``("body", "model", "units", "int", "max")`` -> ``"model.units.max"``.

    Drops the request part, the union tags, and the ``value`` of a fixed parameter (the client
    wrote the bare value, so the parameter itself is the field).
    """
    parts = list(loc)
    if parts and parts[0] in LOC_ROOTS:
        parts = parts[1:]
    out: list[str] = []
    for i, part in enumerate(parts):
        if part in UNION_TAGS:
            continue
        if part == "value" and i > 0 and parts[i - 1] == "fixed":
            continue
        out.append(str(part))
    return ".".join(out)


def _json_safe(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)


def format_validation_errors(errors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors -> ``[{"field", "message", "limit", "type"}]``."""
    detail = []
    for err in errors:
        ctx = err.get("ctx") or {}
        kind = err.get("type", "value_error")
        if kind == "json_invalid":  # the loc is a character offset, not a field
            field = "body"
            reason = ctx.get("error") or err.get("msg", "invalid JSON")
            message = f"{reason} at character {err.get('loc', ('', '?'))[-1]}"
        elif kind == "spec_rule":
            # a study's variant names its own inner field, tags and all
            field = dotted_field(str(ctx.get("field", "")).split(".")) or dotted_field(
                err.get("loc", ())
            )
            message = str(ctx.get("message", err.get("msg", "")))
        else:
            field = dotted_field(err.get("loc", ()))
            message = str(err.get("msg", ""))
            if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
                message = NAME_RULE
        limit = next((ctx[k] for k in LIMIT_KEYS if k in ctx), None)
        detail.append(
            {"field": field, "message": message, "limit": _json_safe(limit), "type": kind}
        )
    return detail


async def _validation_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "validation_error", format_validation_errors(exc.errors()))


async def _api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    for cls, status, code in ERROR_TABLE:
        if isinstance(exc, cls):
            if isinstance(exc, InputValidationError):
                detail: Any = [
                    {
                        "field": exc.field,
                        "message": exc.message,
                        "limit": exc.limit,
                        "type": exc.type,
                    }
                ]
            elif isinstance(exc, ApiError):
                detail = exc.detail
            else:  # the database stayed away past the retry budget: do not leak the driver's text
                log.warning("database unavailable: %s", exc)
                detail = "the database is unreachable; try again later"
            if isinstance(exc, ApiError):
                return error_response(status, code, detail, exc.headers, exc.extra)
            return error_response(status, code, detail, {"Retry-After": DATABASE_RETRY_AFTER_S})
    raise exc  # pragma: no cover  (only registered for the classes of the table)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


#: the methods a 405's ``Allow`` header may list.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this request's path: each is tried
    against the app's routes (Starlette's 405 names only the methods of the first route that
    matched the path, and FastAPI makes one route per method)."""
    allowed = []
    for method in HTTP_METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in request.app.routes):
            allowed.append(method)
    return allowed


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        exc = StarletteHTTPException(
            405, f"{request.method} is not allowed here; allowed: {allow}", {"Allow": allow}
        )
    if isinstance(exc, InvalidJsonError):
        body = {"field": "body", "message": exc.message, "limit": None, "type": "json_invalid"}
        return error_response(422, "validation_error", [body])
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, exc.detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers of this module on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    for cls in {cls for cls, _, _ in ERROR_TABLE}:
        app.add_exception_handler(cls, _api_error_handler)
