"""Parse a stored job spec, resolving an uploaded dataset (``upload:<id>``) from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db import repositories as repo
from db.engine import session_scope
from search_spaces.schema import JobSpec


def parse_spec(spec_json: dict[str, Any], session: Session | None = None) -> JobSpec:
    """``JobSpec.model_validate`` with the database as the resolver of uploaded datasets (of any
    owner: the API checked the spec against its job's owner at submission)."""
    if session is not None:
        return JobSpec.model_validate(
            spec_json, context={"datasets": repo.dataset_resolver(session, None)}
        )
    with session_scope() as own:
        return JobSpec.model_validate(
            spec_json, context={"datasets": repo.dataset_resolver(own, None)}
        )
