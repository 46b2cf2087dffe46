from django.contrib import admin
from django.urls import include, path

from annotation.accounts.views import SignIn
from config.accounts import PasswordReset
from config.api_docs import ApiDocs, ApiSchema

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", SignIn.as_view(), name="login"),
    path("accounts/password_reset/", PasswordReset.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/", include("annotation.accounts.urls")),  # single sign-on
    path("api/schema/", ApiSchema.as_view(), name="schema"),
    path("api/docs/", ApiDocs.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", include("annotation.api_urls")),
    path("api/", include("rewardmodels.api_urls")),
    path("", include("rewardmodels.urls")),
    path("", include("annotation.urls")),
]
