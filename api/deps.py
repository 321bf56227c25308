"""FastAPI dependencies as ``Annotated`` aliases: the app's settings, job queue and predictor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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
