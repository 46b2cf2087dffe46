"""How errors reach people: a service's validation errors on a form, and the API's answers to errors
(4xx with a message, never a 500)."""

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotation.labelling import services as queue
from annotation.pairs.imports import ImportRejected
from annotation.pairs.readers import FileRejected


def add_service_errors(form: forms.BaseForm, exc: DjangoValidationError) -> None:
    """Show a service's ValidationError on the form: by field where it names one."""
    for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
        form.add_error(field if field in form.fields else None, errors)


def exception_handler(exc, context):
    """DRF's handler, plus clear 4xx answers for the domain's own errors."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ImportRejected):
        return Response(
            {"detail": "Nothing was imported.", "errors": [str(e) for e in exc.errors]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, FileRejected):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, queue.QueueConflict):
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    return drf_exception_handler(exc, context)
