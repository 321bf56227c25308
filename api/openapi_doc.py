"""The OpenAPI document as the contract a generated client is built from.

FastAPI writes most of it from the routes; this adds what it cannot know: the spec's schema
(``POST /jobs`` reads its body raw, to validate it with the caller's uploads in context), clean
names where FastAPI makes machine ones, an example on every request body, and in the open mode
no security requirement (no key is asked for).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from search_spaces.example_specs import example_names, example_spec
from search_spaces.schema import JobSpec

#: FastAPI's name for a form body -> the name clients see.
RENAMED_SCHEMAS = {"Body_upload_dataset": "DatasetUpload"}

PREDICT_EXAMPLES = {
    "rows": {
        "summary": "Two rows as lists of feature values",
        "value": {"rows": [[0.0] * 64, [1.0] * 64]},
    },
    "objects": {
        "summary": "Rows keyed by column name (a job on an uploaded table)",
        "value": {"rows": [{"age": 50, "bmi": 33.6, "glucose": 148}], "rank": 1},
    },
    "mc_dropout": {
        "summary": "Monte Carlo dropout: 20 stochastic passes, with a std per output",
        "value": {"rows": [[0.0] * 64], "mc_samples": 20},
    },
}

UPLOAD_EXAMPLE = {"file": "diabetes.csv", "target": "Outcome", "name": "pima"}


def spec_examples() -> dict[str, dict[str, Any]]:
    """The shipped example specs, as OpenAPI examples keyed by name."""
    examples = {}
    for name in example_names():
        spec = example_spec(name)
        examples[name.removesuffix(".json")] = {"summary": spec.get("name", name), "value": spec}
    return examples


def _rename(document: dict[str, Any], old: str, new: str) -> None:
    schemas = document["components"]["schemas"]
    if old not in schemas:
        return
    schemas[new] = {**schemas.pop(old), "title": new}
    old_ref, new_ref = f"#/components/schemas/{old}", f"#/components/schemas/{new}"

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("$ref") == old_ref:
                node["$ref"] = new_ref
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)


def _form_fields_not_null(schema: dict[str, Any]) -> None:
    """A form field is sent or left out, never null (a form has no null): ``anyOf [X, null]``
    becomes ``X``."""
    for field in schema["properties"].values():
        kept = [s for s in field.get("anyOf", []) if s != {"type": "null"}]
        if len(kept) == 1:
            del field["anyOf"]
            field.update(kept[0])


def _body(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return document["paths"][path][method]["requestBody"]["content"]


def _without_keys(document: dict[str, Any]) -> None:
    """The open mode asks for no key: no operation names a security scheme."""
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
            operation["responses"].pop("401", None)
    document.get("components", {}).pop("securitySchemes", None)


def build(generate: Any, prefix: str, open_mode: bool) -> dict[str, Any]:
    """The document FastAPI's ``generate()`` writes, completed."""
    document = generate()
    if open_mode:
        _without_keys(document)
    spec = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in spec.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas["JobSpec"] = spec
    for old, new in RENAMED_SCHEMAS.items():
        _rename(document, old, new)
    _form_fields_not_null(schemas["DatasetUpload"])
    _body(document, f"{prefix}/jobs", "post")["application/json"]["examples"] = spec_examples()
    predict = _body(document, f"{prefix}/jobs/{{job_id}}/predict", "post")
    predict["application/json"]["examples"] = PREDICT_EXAMPLES
    _body(document, f"{prefix}/datasets", "post")["multipart/form-data"]["example"] = UPLOAD_EXAMPLE
    return document


def install(app: FastAPI, prefix: str, open_mode: bool) -> None:
    """Serve the completed document (built once, on first request); ``open_mode``: the API
    asks for no key."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build(generate, prefix, open_mode)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
