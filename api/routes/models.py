"""A job's stored models: download and predict."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.auth import PrincipalDep
from api.deps import PredictorDep, SettingsDep
from api.json_body import JsonRoute
from api.schemas import PredictRequest, PredictResponse, error_responses
from api.services import models as services

router = APIRouter(prefix="/jobs/{job_id}", tags=["models"], route_class=JsonRoute)

MODEL_HEADERS = {
    name: {"description": description, "schema": {"type": kind}}
    for name, kind, description in [
        ("Content-Disposition", "string", "attachment; the model's file name."),
        ("X-Model-SHA256", "string", "SHA-256 of the file (also its ETag)."),
        ("X-Model-Trial-Number", "integer", "The trial that trained this model."),
        ("X-Model-Rank", "integer", "Its rank among the job's stored models (1 = best)."),
        ("X-Model-Score", "number", "The trial's score on the objective (absent if none)."),
    ]
}


@router.get(
    "/model",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "description": "The .keras file (a zip archive Keras loads with "
            "``keras.models.load_model``).",
            "headers": MODEL_HEADERS,
        },
        **error_responses(404, 409),
    },
)
def download_model(
    job_id: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    rank: Annotated[int, Query(ge=1, le=100, description="1 = the best model.")] = 1,
) -> Response:
    """The job's ``rank``-th best model in Keras's ``.keras`` format."""
    model = services.find_model(settings, principal.owner, job_id, rank)
    content = services.model_content(settings, model)
    headers = {
        "Content-Disposition": f'attachment; filename="{model.filename}"',
        "X-Model-SHA256": model.sha256,
        "X-Model-Trial-Number": str(model.trial_number),
        "X-Model-Rank": str(model.rank),
        "ETag": f'"{model.sha256}"',
    }
    if model.score is not None:
        headers["X-Model-Score"] = repr(model.score)
    return Response(content=content, media_type="application/octet-stream", headers=headers)


@router.post(
    "/predict",
    response_model=PredictResponse,
    responses=error_responses(404, 409, 413, 415, 422, 500, 504),
)
def predict(
    job_id: str,
    body: PredictRequest,
    settings: SettingsDep,
    predictor: PredictorDep,
    principal: PrincipalDep,
) -> PredictResponse:
    """Predict with a stored model (in a separate process). ``mc_samples`` > 0: MC dropout."""
    return services.predict(settings, predictor, principal.owner, job_id, body)
