"""Parse a stored job spec, resolving an uploaded dataset (``upload:<id>``) from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db.engine import session_scope
from db.repositories.uploads import dataset_resolver
from db.transient import run_retried
from search_spaces.schema import JobSpec


def parse_spec(spec_json: dict[str, Any], session: Session | None = None) -> JobSpec:
    """``JobSpec.model_validate`` with the database as the resolver of uploaded datasets (of any
    owner: the API checked the spec against its job's owner at submission). Without a
    ``session``, in a read transaction of its own."""
    if session is not None:
        return JobSpec.model_validate(
            spec_json, context={"datasets": dataset_resolver(session, None)}
        )

    def parse() -> JobSpec:
        with session_scope() as own:
            return parse_spec(spec_json, own)

    return run_retried("read a job's spec", parse)
