"""Datasets: the built-in catalogue and uploaded files (upload, list, inspect, delete)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status

from api.auth import PrincipalDep
from api.deps import Offset, SettingsDep
from api.json_body import JsonRoute
from api.schemas import DatasetDetail, DatasetPage, error_responses
from api.services import API_PREFIX
from api.services import datasets as services
from search_spaces.datasets import Task
from search_spaces.limits import MAX_NAME_LENGTH, NAME_PATTERN, NAME_RULE

router = APIRouter(prefix="/datasets", tags=["datasets"], route_class=JsonRoute)

#: the upload path, whose body limit is ``max_upload_bytes`` (see ``create_app``).
UPLOAD_PATH = "/datasets"


@router.get("", response_model=DatasetPage)
def list_datasets(
    settings: SettingsDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Offset = 0,
) -> DatasetPage:
    """The datasets a spec can name: the built-ins (``kind: builtin``), then the caller's
    uploads, newest first."""
    return services.list_datasets(settings, principal.owner, limit, offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetDetail,
    responses=error_responses(413, 422, 429),
)
def upload_dataset(
    file: Annotated[UploadFile, File(description="A .csv, .npz (arrays x, y) or .parquet file.")],
    settings: SettingsDep,
    principal: PrincipalDep,
    response: Response,
    name: Annotated[
        str | None,
        Form(
            max_length=MAX_NAME_LENGTH,
            pattern=NAME_PATTERN,
            description=f"A label (default: the file's name): {NAME_RULE}.",
        ),
    ] = None,
    fmt: Annotated[
        Literal["csv", "npz", "parquet"] | None,
        Form(alias="format", description="Default: from the file name's extension."),
    ] = None,
    target: Annotated[
        str | None, Form(max_length=1000, description="The target column (CSV, Parquet).")
    ] = None,
    task: Annotated[
        Task | None, Form(description="Override the task inferred from the target.")
    ] = None,
) -> DatasetDetail:
    """Upload a dataset: parsed with safe readers, normalised to numeric arrays and stored.

    A spec trains on it with ``"dataset": {"name": "upload:<id>"}``.
    """
    detail = services.upload_dataset(
        settings,
        principal.owner,
        file.file.read(),
        filename=file.filename,
        name=name,
        fmt=fmt,
        target=target,
        task=task,
    )
    response.headers["Location"] = f"{API_PREFIX}/datasets/{detail.id}"
    return detail


@router.get("/{dataset_id}", response_model=DatasetDetail, responses=error_responses(404))
def get_dataset(dataset_id: str, settings: SettingsDep, principal: PrincipalDep) -> DatasetDetail:
    """A built-in by name, or one of the caller's uploads by id with its summary."""
    return services.get_dataset(settings, principal.owner, dataset_id)


@router.delete(
    "/{dataset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(404, 409),
)
def delete_dataset(dataset_id: str, settings: SettingsDep, principal: PrincipalDep) -> Response:
    """Delete an upload; 409 while a queued or running job uses it."""
    services.delete_dataset(settings, principal.owner, dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
