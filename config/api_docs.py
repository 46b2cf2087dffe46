"""The API's schema and its Swagger UI, for signed-in users unless API_DOCS_PUBLIC=1. Signed
out, the UI sends a browser to the login page and back; the schema answers 401 in JSON, as
a script reads it, not a YAML file that a browser downloads."""

from django.contrib.auth.views import redirect_to_login
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.renderers import JSONRenderer


class ApiSchema(SpectacularAPIView):
    def get_authenticate_header(self, request) -> str | None:
        # A 401 says how to sign in: the first scheme that has a header (a token).
        headers = (auth.authenticate_header(request) for auth in self.get_authenticators())
        return next((header for header in headers if header), None)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class ApiDocs(SpectacularSwaggerSplitView):
    def handle_exception(self, exc):
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path())
        return super().handle_exception(exc)
