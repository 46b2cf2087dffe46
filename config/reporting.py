"""What Django's error page in debug mode (DJANGO_DEBUG=1) shows of the settings and the
environment."""

import re

from django.views.debug import SafeExceptionReporterFilter


class SecretsHidden(SafeExceptionReporterFilter):
    """Django's filter, which hides settings and request variables named like a key, token or
    password, hiding as well those that carry secrets under other names: the single sign-on
    providers (OIDC_PROVIDERS, with each client's secret) and URLs, which may hold a password
    (DATABASE_URL, CELERY_BROKER_URL, EMAIL_URL)."""

    hidden_settings = re.compile("API|TOKEN|KEY|SECRET|PASS|SIGNATURE|PROVIDERS|_URL$", re.I)
