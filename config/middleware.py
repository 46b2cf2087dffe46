"""Middleware of the whole site: the Content-Security-Policy header, a 413 for bodies over
the upload limit, and a 400 for NUL characters anywhere Django parses a request (path,
query, form fields, file names) before any view hands them to the database."""

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest

from config.inputs import text_problem


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
