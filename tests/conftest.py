import os

import pytest
from django.db import connection
from django.test import Client
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


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture(autouse=True)
def fresh_cache():
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """The packaged MiniLM with LoRA, trained once per session on separable pairs (polite
    chosen, curt rejected): the saved model folder and its held-out figures."""
    from tests.factories import separable_rows
    from workers.ml import training
    from workers.ml.config import TrainConfig

    rows = separable_rows(96)
    config = TrainConfig(
        method="lora", learning_rate=1e-3, batch_size=16, epochs=4, eval_every=100, max_length=64
    )
    folder = tmp_path_factory.mktemp("trained")
    final = training.train(config, rows[:64], rows[64:], folder)
    return folder / "model", final


@pytest.fixture
def dataset(project):
    """fruit@v1: 48 separable pairs of `project`, a quarter of them held out."""
    from annotation.agreement.services import consensus_refresh
    from annotation.curation.selection import CurationFilters
    from annotation.curation.services import dataset_curate
    from annotation.models import Label
    from tests.factories import PairFactory, separable_rows

    for row in separable_rows(48):
        pair = PairFactory(
            project=project, prompt=row["prompt"], response_a=row["chosen"],
            response_b=row["rejected"],
        )  # fmt: skip
        Label.objects.create(pair=pair, source="imported", choice="a")
    consensus_refresh(pair_ids=project.pairs.values_list("id", flat=True))
    return dataset_curate(
        project=project, name="fruit", filters=CurationFilters(test_fraction=0.25), user=None
    )


@pytest.fixture
def eager(settings):
    """Tasks run inline in the test process instead of going to a worker."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def reward_model(dataset, trained_model):
    """The session's trained model, registered from a succeeded run on fruit@v1."""
    from rewardmodels.models import RewardModel, TrainingRun

    run = TrainingRun.objects.create(
        dataset=dataset, status=TrainingRun.Status.SUCCEEDED, final_metrics={"accuracy": 0.9}
    )
    return RewardModel.objects.create(
        identifier="rm-1-fruit-v1", run=run, project=dataset.project, dataset=dataset,
        base_model=run.base_model, artifact=str(trained_model[0]),
    )  # fmt: skip
