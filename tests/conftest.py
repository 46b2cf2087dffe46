import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotation.models import Membership
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

# CI sets this so that tests needing PostgreSQL or Chromium fail instead of skipping.
SERVICES_REQUIRED = os.environ.get("PREFHUB_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(config, items):
    if SERVICES_REQUIRED and not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise pytest.UsageError("PREFHUB_REQUIRE_SERVICES=1 needs DATABASE_URL on PostgreSQL")


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def on_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def project(db):
    return ProjectFactory(name="Helpfulness")


@pytest.fixture
def annotator(project):
    return MembershipFactory(project=project, user__username="ann").user


@pytest.fixture
def other_annotator(project):
    return MembershipFactory(project=project, user__username="bob").user


@pytest.fixture
def lead(project):
    return MembershipFactory(project=project, user__username="lea", role=Membership.Role.LEAD).user


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db):
    """Annotates in another project only."""
    return MembershipFactory(user__username="eve").user


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()
