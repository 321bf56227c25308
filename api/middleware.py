"""ASGI middleware: refuse request bodies over ``max_request_bytes`` (or a path's own limit, e.g.
``max_upload_bytes`` for dataset uploads) before reading them whole."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import RequestTooLargeError


class BodySizeLimitMiddleware:
    """413 when ``Content-Length`` says the body is too large, or once the streamed bytes are.

    A chunked body is counted as it arrives; the first chunk over the limit raises
    ``RequestTooLargeError`` inside the app's ``receive``, so the rest is never read.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: exact request paths with a limit of their own (e.g. the dataset upload).
        self.path_limits = dict(path_limits or {})

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {"error": "payload_too_large", "detail": f"request body larger than {limit} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await self._reject(send, limit)
                    return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLargeError:
            if started:
                raise
            await self._reject(send, limit)
