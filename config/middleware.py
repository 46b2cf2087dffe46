"""Middleware of the whole site: the Content-Security-Policy header, a 413 for bodies over
the upload limit, a 400 for NUL characters anywhere Django parses a request (path,
query, form fields, file names) before any view hands them to the database, and a 503 for
a request the database went away under."""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.loader import render_to_string

from config.inputs import text_problem

logger = logging.getLogger(__name__)


class ContentSecurityPolicy:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class RequestSizeLimit:
    """413 for a body declared larger than UPLOAD_MAX_MB, before any of it is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        limit = settings.UPLOAD_MAX_MB
        if size > limit * 1024 * 1024:
            return HttpResponse(
                f"The request body ({size / 2**20:,.0f} MB) is over the limit of {limit:,.0f} MB "
                "(UPLOAD_MAX_MB).", status=413, content_type="text/plain",
            )  # fmt: skip
        return self.get_response(request)


class RejectNulBytes:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = self._problem(request)
        if problem:
            return HttpResponseBadRequest(f"Bad request: {problem}.", content_type="text/plain")
        return self.get_response(request)

    @staticmethod
    def _problem(request) -> str | None:
        texts = [request.path]
        for key, values in request.GET.lists():
            texts += [key, *values]
        form = ("application/x-www-form-urlencoded", "multipart/form-data")
        if request.method == "POST" and request.content_type in form:
            for key, values in request.POST.lists():
                texts += [key, *values]
            for _, files in request.FILES.lists():
                texts += [upload.name for upload in files]
        for text in texts:
            problem = text_problem(text)
            if problem:
                return f"the request {problem}"
        return None


class DatabaseUnavailable:
    """503 with Retry-After, not a 500, for a view that failed because the database could not
    be reached or ended its connection (a restart, a failover): the client can tell that
    trying again will do. Django closes the broken connection when the request ends, so the
    next one opens a fresh connection."""

    RETRY_AFTER_SECONDS = 5
    MESSAGE = "The database could not be reached (it may be restarting). Try again in a moment."

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("%s %s: database unavailable: %s", request.method, request.path, exception)
        if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
            response = JsonResponse({"detail": self.MESSAGE}, status=503)
        else:
            # No request context: the site's usual page asks the database about the user.
            page = render_to_string("503.html", {"message": self.MESSAGE})
            response = HttpResponse(page, status=503)
        response.headers["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response
