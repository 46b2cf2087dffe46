"""What the OpenAPI schema says of every operation beyond its success: the error answers the
API gives, each `{"detail": "..."}` (or, for 400, the fields with their problems)."""

ERRORS = {
    "400": "Bad input: the fields and their problems, or a detail message.",
    "401": "Not signed in (no session or token).",
    "403": "Signed in, but not allowed to do this.",
    "404": "No such object, or not one you may see.",
    "409": "Conflicts with the current state (an answered or reissued assignment, no "
    "promoted model, ...).",
    "413": "The request body is over UPLOAD_MAX_MB.",
    "503": "No worker, broker or database answered in time; try again after Retry-After seconds.",
}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}


def add_error_answers(result, generator, request, public):
    """drf-spectacular postprocessing hook: every operation lists the error answers with
    their shape, where the view did not describe them itself."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            answers = operation.setdefault("responses", {})
            for code, text in ERRORS.items():
                if code == "413" and method not in ("post", "put", "patch"):
                    continue
                answers.setdefault(
                    code,
                    {"description": text, "content": {"application/json": {"schema": reference}}},
                )
    return result
