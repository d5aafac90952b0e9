"""The bad-input corpus, generated from the OpenAPI schema's request bodies: for every operation
that takes a body, a plausible base body, then one bad value at a time in each field (NaN,
infinities, negative and huge numbers, wrong types, over-long strings, deeply nested JSON,
path-traversal names), whole bodies that are hostile (nested 10,000 deep, 20 MiB, not JSON), and
for uploads non-video, truncated and mislabelled files and path-traversal file names; plus every
path parameter replaced by an unknown id."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

UNKNOWN_ID = 987_654_321
LONG_TEXT = "x" * 100_000
TRAVERSAL = "../../../../etc/passwd"
HUGE_BODY_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class BadRequest:
    operation: str  # "POST /api/masklets/{masklet_id}/prompt/"
    what: str  # which bad input, e.g. "frame_index=NaN"
    path_template: str
    path_params: dict[str, Any]  # overrides of the world's ids (unknown ids)
    content_type: str  # "application/json" or "multipart/form-data"
    body: bytes | dict[str, Any]  # raw JSON bytes, or multipart fields (files as (name, bytes))
    text_only: bool = False  # a free-text value: may be stored as text, never used as a path


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in node and len(node["allOf"]) == 1:
        return _resolve(schema, node["allOf"][0])
    if "oneOf" in node:
        return _resolve(schema, node["oneOf"][0])
    return node


def _sample(prop: dict[str, Any]) -> Any:
    if "enum" in prop:
        return next(v for v in prop["enum"] if v is not None)
    kind = prop.get("type")
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "sample"


def _nested(depth: int, leaf: Any = 0) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _bad_values(prop: dict[str, Any]) -> Iterator[tuple[str, Any, bool]]:
    """(label, value, text_only) of the bad values for one field."""
    kind = "enum" if "enum" in prop else prop.get("type")
    if kind in ("integer", "number"):
        yield "NaN", float("nan"), False
        yield "Infinity", float("inf"), False
        yield "-Infinity", float("-inf"), False
        yield "-1", -1, False
        yield "1e30", 10**30, False
        yield "wrong type (text)", "twelve", False
        if kind == "integer":
            yield "1.5", 1.5, False
    elif kind in ("string", "enum"):
        if kind == "enum":
            yield "not a choice", "no-such-choice", False
        yield "100,000 characters", LONG_TEXT, False
        yield "path traversal", TRAVERSAL, kind == "string"
        yield "wrong type (object)", {"a": 1}, False
    elif kind == "boolean":
        yield "wrong type (text)", "maybe", False
    elif kind in ("array", "object"):
        yield "nested 200 deep", _nested(200), False
        yield "wrong type (number)", 7, False


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _json_cases(
    schema: dict[str, Any], name: str, path: str, props: dict[str, Any], required: list[str]
) -> Iterator[BadRequest]:
    base = {key: _sample(_resolve(schema, prop)) for key, prop in props.items()}
    for key, prop in props.items():
        for label, value, text_only in _bad_values(_resolve(schema, prop)):
            body = _json_bytes({**base, key: value})
            yield BadRequest(name, f"{key}={label}", path, {}, "application/json", body, text_only)
    for key in required:
        body = _json_bytes({k: v for k, v in base.items() if k != key})
        yield BadRequest(name, f"{key} missing", path, {}, "application/json", body)
    deep = b"[" * 10_000 + b"]" * 10_000
    yield BadRequest(name, "body nested 10,000 deep", path, {}, "application/json", deep)
    yield BadRequest(name, "body not JSON", path, {}, "application/json", b'{"a": ')
    yield BadRequest(name, "body a list", path, {}, "application/json", b"[]")
    huge = b'{"pad": "' + b"x" * HUGE_BODY_BYTES + b'"}'
    yield BadRequest(name, "body of 20 MiB", path, {}, "application/json", huge)


def _upload_cases(
    name: str, path: str, props: dict[str, Any], files: list[str], clip: bytes
) -> Iterator[BadRequest]:
    base = {k: _sample(v) for k, v in props.items() if k not in files}
    contents = {
        "a text file named .mp4": ("notes.mp4", b"this is not a video\n" * 50),
        "a truncated video": ("clip.mp4", clip[: max(64, len(clip) // 5)]),
        "a PNG named .mp4": ("image.mp4", b"\x89PNG\r\n\x1a\n" + b"\0" * 200),
        "an empty file": ("empty.mp4", b""),
        "a path-traversal file name": ("../../../../tmp/evil.mp4", clip[:64]),
    }
    for field_name in files:
        for label, content in contents.items():
            yield BadRequest(
                name,
                f"{field_name}: {label}",
                path,
                {},
                "multipart/form-data",
                {**base, field_name: content},
            )


def bad_requests(schema: dict[str, Any], clip: bytes) -> list[BadRequest]:
    """Every bad request of the corpus for the schema's operations that take a body, and an
    unknown id in each path parameter of every operation."""
    cases: list[BadRequest] = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            name = f"{method.upper()} {path}"
            for param in re.findall(r"\{(\w+)\}", path):
                cases.append(
                    BadRequest(name, f"unknown {param}", path, {param: UNKNOWN_ID}, "", b"")
                )
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                body = _resolve(schema, content["application/json"]["schema"])
                props = dict(body.get("properties", {}))
                files = [
                    k for k, v in props.items() if _resolve(schema, v).get("format") == "binary"
                ]
                props = {k: v for k, v in props.items() if k not in files}
                cases += _json_cases(schema, name, path, props, body.get("required", []))
            if "multipart/form-data" in content:
                body = _resolve(schema, content["multipart/form-data"]["schema"])
                props = {k: _resolve(schema, v) for k, v in body.get("properties", {}).items()}
                files = [k for k, v in props.items() if v.get("format") == "binary"]
                if files:
                    cases += _upload_cases(name, path, props, files, clip)
    return cases
