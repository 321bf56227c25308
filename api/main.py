"""The FastAPI application: ``create_app()`` wires settings, routes, errors and lifecycle.

Run with ``hpsearch serve`` (or ``uvicorn --factory api.main:create_app``). This module never
imports TensorFlow, Keras or the worker package: predictions run in a spawned child process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from api import dashboard, metrics, openapi_doc
from api.auth import authenticate, log_auth_mode
from api.dashboard.page_builder import PageBuilder
from api.errors import install_error_handlers
from api.inference import Predictor
from api.middleware import BodySizeLimitMiddleware
from api.queue import JobQueue
from api.rate_limit import RateLimiter
from api.routes import datasets, jobs, models, service, trials
from api.schemas import error_responses
from api.services import API_PREFIX
from api.services.account import service_version
from db.migrate import upgrade
from db.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_auth_mode(settings)
        if settings.migrate_on_start:
            log.info("applying database migrations")
            upgrade(settings.resolved_database_url())
        if settings.prewarm_predictor:
            app.state.predictor.warm()
        try:
            yield
        finally:
            try:
                app.state.predictor.shutdown()
            finally:
                app.state.page_builder.shutdown()
                app.state.queue.close()

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    """A configured API application (default settings: the environment's ``HPSEARCH_*``)."""
    settings = settings or get_settings()
    settings.apply_log_level()
    # /docs and /redoc load Swagger UI and ReDoc from the service itself (the fastapi-offline
    # package ships them), never from a CDN: they work on a machine with no internet.
    app = FastAPIOffline(
        title="hpsearch",
        version=service_version(),
        description="Hyperparameter search for Keras dense networks: submit a spec, follow its "
        "trials, download or query the best models.",
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        static_url="/static/docs",
        # operation ids are the route functions' names (submit_job, list_trials...): what a
        # generated client calls its methods
        generate_unique_id_function=lambda route: route.name,
        lifespan=_lifespan(settings),
    )
    app.state.settings = settings
    app.state.queue = JobQueue(settings)
    app.state.predictor = Predictor(settings.predict_timeout_s)
    app.state.page_builder = PageBuilder(settings)
    app.state.rate_limiter = RateLimiter(settings)
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        path_limits={API_PREFIX + datasets.UPLOAD_PATH: settings.max_upload_bytes},
    )
    # Every route of these routers needs a key; the service routes declare their own needs.
    keyed = [Depends(authenticate)]
    for module in (jobs, trials, models, datasets):
        # a key can be refused (401) or over its rate (429); any parameter can be invalid
        # (422); the database can be away for longer than the API retries (503)
        app.include_router(
            module.router,
            prefix=API_PREFIX,
            dependencies=keyed,
            responses=error_responses(401, 422, 429, 503),
        )
    app.include_router(service.router, prefix=API_PREFIX, responses=error_responses(422))
    metrics.install(app, settings)
    dashboard.install(app, API_PREFIX)
    openapi_doc.install(app, API_PREFIX, open_mode=settings.auth_mode == "open")

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    def versioned_openapi() -> JSONResponse:
        """The same document under the API's prefix, where earlier versions served it."""
        return JSONResponse(app.openapi())

    return app
