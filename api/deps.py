"""FastAPI dependencies as ``Annotated`` aliases: the app's settings, job queue and predictor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from api.inference import Predictor
from api.queue import JobQueue
from db.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_queue(request: Request) -> JobQueue:
    return request.app.state.queue


def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]

#: list offsets and trial numbers stay far inside every database's integer range.
MAX_OFFSET = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
TrialNumber = Annotated[int, Path(ge=0, le=MAX_OFFSET, description="The trial's number (0-based).")]
