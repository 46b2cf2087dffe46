"""API scoring through a real worker: the web process sends the work to the interactive
queue and waits for the answer in the result backend; the worker keeps the model loaded."""

import time

import pytest

from tests.conftest import client_for
from tests.workers.conftest import redis_url

pytestmark = [pytest.mark.django_db(transaction=True)]

POLITE = "Gladly! mango pear. I hope that helps, thank you for asking."


def test_scoring_requests_are_answered_by_a_worker(
    results_in_redis, workers, lead, reward_model, settings
):
    model = reward_model
    settings.INTERACTIVE_WAIT_SECONDS = 60  # the first request loads torch and the model
    workers("interactive", CELERY_RESULT_BACKEND=redis_url())
    body = {"items": [{"prompt": "Question 4: name some fruit.", "response": "No. plum"},
                      {"prompt": "Question 4: name some fruit.", "response": POLITE}]}  # fmt: skip
    client = client_for(lead)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        answer = client.post(f"/api/reward-models/{model.pk}/score", body, format="json")
        timings.append(time.perf_counter() - started)
        logs = "\n".join(log.read_text()[-3000:] for log in workers.logs)
        assert answer.status_code == 200, f"{answer.content}\n{logs}"
        curt, polite = answer.json()["rewards"]
        assert polite > curt
    # The first answer waited for the worker to load the model; the second found it loaded.
    assert timings[1] < timings[0] / 2, timings
