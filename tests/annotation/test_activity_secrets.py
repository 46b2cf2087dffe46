"""Nothing the activity log keeps or shows carries a password, token, key or secret: a team's
flows run through the real pages, API and commands with distinctive secrets (passwords good
and wrong, API tokens and their digests, judges' keys, the single sign-on client's secret
and code), then every entry's every field, the log's pages, its export and `manage.py
activity` are searched for each of them.

Not driven: a password reset by mail (it writes no entry, and needs a mail server:
tests/config/test_accounts.py), and what only a worker does (training, judging), whose runs
and jobs are queued here but not run."""

import io
import json
import re
from functools import partial
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from knox.settings import CONSTANTS

from annotation.activity import selectors
from annotation.models import ActivityEntry, ApiToken, Judge, Pair, Project
from rewardmodels.models import RewardModel, TrainingRun
from tests.accounts.conftest import at_the_provider, providers_json, use_providers
from tests.accounts.provider import PASSWORD as PROVIDER_PASSWORD
from tests.accounts.provider import running_provider
from tests.accounts.test_tokens import NEW_TOKEN, by_token
from tests.annotation.test_project_setup import settings_fields
from tests.factories import UserFactory, passing_audit, separable_rows
from tests.rewardmodels.test_views import launch

Kind = ActivityEntry.Kind
User = get_user_model()

# Every secret a person types is distinctive, so that finding it anywhere is a leak, not a
# coincidence; letters, digits and dashes only, so that it reads the same in JSON and HTML.
PASSWORDS = {
    "root": "root-pw-Qz81vXk2-secret",
    "lea": "lea-pw-Hd47rPw0-secret",
    "ann": "ann-pw-Mt30cYs9-secret",
    "temp": "temp-pw-Bn62kLq5-secret",
    "locked": "locked-pw-Vu19eGa7-secret",
}
WRONG_PASSWORD = "wrong-pw-Xy55oTf3-secret"
WRONG_ADMIN_PASSWORD = "wrong-admin-pw-Kc08jRm6-secret"
NEW_PASSWORD = "ann-new-pw-Pl26wDe4-secret"
JUDGE_KEYS = [f"sk-judge-key-{n}-Rw93bNc1sEcReT" for n in range(4)]
JUDGE_URL_PASSWORD = "url-pw-Zh74qSy8-secret"
WRONG_CLIENT_SECRET = "wrong-client-secret-Gf41uAo2"


def sign_in(username: str, password: str) -> Client:
    """A browser signed in through the login page with a password."""
    client = Client()
    answer = client.post("/accounts/login/", {"username": username, "password": password})
    assert answer.status_code == 302, answer.content.decode()[:500]
    return client


def refused(client: Client, username: str, password: str, path: str = "/accounts/login/"):
    """A password sign-in that is turned down: its answer."""
    answer = client.post(path, {"username": username, "password": password})
    assert answer.status_code in (200, 429), (username, answer.status_code)  # not signed in
    return answer


def password_flows(secrets: dict, settings) -> dict[str, Client]:
    """Sign-ins with the right password, wrong ones (on the login page and the admin's), a
    lockout, the password change form and a sign-out and in again with the new password.
    The browsers of root (an admin), lea and ann."""
    settings.AXES_FAILURE_LIMIT = 3  # locked out after three wrong passwords, not ten
    for name, password in PASSWORDS.items():
        user = UserFactory(username=name, password=password, is_staff=name == "root",
                           is_superuser=name == "root")  # fmt: skip
        secrets[f"{name}'s password"] = password
        secrets[f"{name}'s password hash"] = user.password.rsplit("$", 1)[-1]
    secrets |= {"a wrong password": WRONG_PASSWORD, "a wrong admin password": WRONG_ADMIN_PASSWORD,
                "ann's new password": NEW_PASSWORD}  # fmt: skip
    stranger = Client()
    refused(stranger, "root", WRONG_PASSWORD)
    refused(stranger, "root", WRONG_ADMIN_PASSWORD, "/admin/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        refused(stranger, "locked", WRONG_PASSWORD)
    locked_out = refused(stranger, "locked", PASSWORDS["locked"])
    assert locked_out.status_code == 429, "locked out: the right password is refused too"
    browsers = {name: sign_in(name, PASSWORDS[name]) for name in ("root", "lea", "ann")}

    changed = browsers["ann"].post("/accounts/password_change/", {
        "old_password": PASSWORDS["ann"], "new_password1": NEW_PASSWORD,
        "new_password2": NEW_PASSWORD,
    })  # fmt: skip
    assert changed.status_code == 302, changed.content.decode()[:500]
    browsers["ann"].post("/accounts/logout/")
    browsers["ann"] = sign_in("ann", NEW_PASSWORD)
    secrets["ann's new password hash"] = User.objects.get(username="ann").password.rsplit("$", 1)[
        -1
    ]
    return browsers


def project_flows(browsers: dict) -> Project:
    """An admin creates a project and adds its people; its lead changes settings and adds,
    promotes and removes a member."""
    root, lea = browsers["root"], browsers["lea"]
    made = root.post("/projects/new/", settings_fields(Project(name="Secrets")))
    assert made.status_code == 302, made.content.decode()[:500]
    project = Project.objects.get(name="Secrets")
    url = f"/projects/{project.pk}/settings/"
    for user, role in (("lea", "lead"), ("ann", "annotator")):
        assert root.post(url, {"action": "add", "user": user, "role": role}).status_code == 302
    saved = lea.post(url, settings_fields(project, annotators_per_pair=2, gold_rate=0.1))
    assert saved.status_code == 302, saved.content.decode()[:500]
    lea.post(url, {"action": "add", "user": "temp", "role": "annotator"})
    temp = project.memberships.get(user__username="temp")
    lea.post(url, {"action": "role", "membership": temp.pk, "role": "lead"})
    lea.post(url, {"action": "remove", "membership": temp.pk})
    return project


def token_flows(browsers: dict, project: Project, secrets: dict, tmp_path) -> None:
    """Tokens made on the account page, through the API and by `createtoken`; each used on
    the API (pairs imported, a label given and changed), then revoked."""
    page = browsers["ann"].post("/account/", {"action": "create", "name": "nightly"})
    from_page = NEW_TOKEN.search(page.content.decode()).group(1)
    made = browsers["lea"].post("/api/tokens/", {"name": "pipeline"},
                                content_type="application/json")  # fmt: skip
    assert made.status_code == 201, made.content
    from_api = made.json()["token"]
    out = io.StringIO()
    call_command("createtoken", "ann", "--name", "cli", stdout=out)
    from_command = out.getvalue().strip().rsplit(" ", 1)[-1]
    for name, secret in (("page", from_page), ("API", from_api), ("command", from_command)):
        row = ApiToken.objects.get(token_key=secret[: CONSTANTS.TOKEN_KEY_LENGTH])
        secrets |= {f"the {name} token": secret, f"the {name} token's digest": row.digest,
                    f"the {name} token's first characters": row.token_key}  # fmt: skip

    rows = [{"id": f"s-{i}", "source": "vendor-x", **row} for i, row in enumerate(
        separable_rows(24))]  # fmt: skip
    rows += [{"id": f"u-{i}", "prompt": f"Unlabelled {i}?", "response_a": "Yes.",
              "response_b": "No."} for i in range(4)]  # fmt: skip
    body = "".join(json.dumps(row) + "\n" for row in rows).encode()
    upload = SimpleUploadedFile("pairs.jsonl", body, content_type="application/jsonl")
    imported = by_token(from_api).post(f"/api/projects/{project.pk}/import/", {"file": upload})
    assert imported.status_code == 201, imported.content
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"pair": "u-0", "annotator": "vendor-y", "choice": "a"}) + "\n")
    call_command("import_labels", "Secrets", str(labels), stdout=io.StringIO())

    annotator = by_token(from_page)
    shown = annotator.post(f"/api/projects/{project.pk}/next/")
    assert shown.status_code == 200, shown.content
    label_url = f"/api/assignments/{shown.json()['id']}/label/"
    given = annotator.post(label_url, {"choice": "left", "strength": 2}, format="json")
    assert given.status_code in (200, 201), given.content
    again = annotator.put(label_url, {"choice": "right", "strength": 1}, format="json")
    assert again.status_code == 200, again.content
    assert by_token(from_command).get("/api/labels/mine/").status_code == 200

    page_row = ApiToken.objects.get(name="nightly")
    browsers["ann"].post("/account/", {"action": "revoke", "token": page_row.pk})
    api_row = ApiToken.objects.get(name="pipeline")
    assert by_token(from_api).delete(f"/api/tokens/{api_row.pk}/").status_code == 204
    command_row = ApiToken.objects.get(name="cli")
    root = browsers["root"]  # an admin revokes another's token
    assert root.delete(f"/api/tokens/{command_row.pk}/").status_code == 204
    assert not ApiToken.objects.exists()


def review_flows(browsers: dict, project: Project) -> None:
    """The lead adjudicates a pair, gives another a gold answer and reorders the queue."""
    lea = browsers["lea"]
    first, second = Pair.objects.filter(project=project).order_by("id")[:2]
    for pair, url, body in ((first, "adjudication", {"choice": "a"}),
                            (second, "gold", {"gold_choice": "b"})):  # fmt: skip
        answer = lea.post(f"/api/pairs/{pair.pk}/{url}/", body, content_type="application/json")
        assert answer.status_code in (200, 201, 204), answer.content
    places = [{"kind": "source", "name": "vendor-x", "paused": True}]
    order = lea.put(f"/api/projects/{project.pk}/precedence/", places,
                    content_type="application/json")  # fmt: skip
    assert order.status_code == 200, order.content


def judge_flows(browsers: dict, project: Project, secrets: dict) -> None:
    """An admin makes a judge on its page with a key, changes the key there, names a workers'
    variable instead through the API, then a new key with a base URL holding a password; a
    second judge is made through the API. The lead starts a judging job and cancels it (the
    job is queued on commit, so no worker is needed)."""
    root = browsers["root"]
    fields = {"name": "secret-judge", "provider": "openai", "base_url": "http://127.0.0.1:9/v1",
              "model": "m", "max_tokens": 512, "concurrency": 4, "timeout_seconds": 30}  # fmt: skip
    secrets |= {f"judge key {n}": key for n, key in enumerate(JUDGE_KEYS)}
    secrets["the password in a judge's base URL"] = JUDGE_URL_PASSWORD
    assert root.post("/judges/", {**fields, "api_key": JUDGE_KEYS[0]}).status_code == 302
    judge = Judge.objects.get(name="secret-judge")
    secrets["judge key 0, encrypted"] = judge.api_key_encrypted
    edited = root.post(f"/judges/{judge.pk}/", {**fields, "model": "m2", "api_key": JUDGE_KEYS[1]})
    assert edited.status_code == 302, edited.content.decode()[:500]
    judge.refresh_from_db()
    secrets["judge key 1, encrypted"] = judge.api_key_encrypted
    api = f"/api/judges/{judge.pk}/"
    named = root.patch(api, {"api_key_env": "PREFHUB_JUDGE_API_KEY"},
                       content_type="application/json")  # fmt: skip
    assert named.status_code == 200 and named.json()["key_source"].startswith("$"), named.content
    with_password = f"http://judge:{JUDGE_URL_PASSWORD}@127.0.0.1:9/v1"
    moved = root.patch(api, {"base_url": with_password, "api_key": JUDGE_KEYS[2],
                             "api_key_env": ""}, content_type="application/json")  # fmt: skip
    assert moved.status_code == 200, moved.content
    judge.refresh_from_db()
    secrets["judge key 2, encrypted"] = judge.api_key_encrypted
    second = root.post("/api/judges/", {**fields, "name": "second-judge", "api_key": JUDGE_KEYS[3]},
                       content_type="application/json")  # fmt: skip
    assert second.status_code == 201, second.content
    secrets["judge key 3, encrypted"] = Judge.objects.get(name="second-judge").api_key_encrypted
    changes = ActivityEntry.objects.filter(kind=Kind.JUDGE_CHANGED).order_by("id")
    changes = changes.values_list("changes", flat=True)
    assert [change.get("api_key") for change in changes] == ["changed"] * 3  # what, never the key
    assert changes.last()["base_url"] == [fields["base_url"], "http://judge:***@127.0.0.1:9/v1"]

    job = browsers["lea"].post(f"/api/projects/{project.pk}/judging-jobs/",
                               {"judge": "secret-judge", "pairs": "all"},
                               content_type="application/json")  # fmt: skip
    assert job.status_code == 201, job.content
    browsers["lea"].post(f"/api/judging-jobs/{job.json()['id']}/cancel/")


def model_flows(browsers: dict, project: Project, tmp_path) -> None:
    """The lead curates a version and downloads it; an admin launches a training run on it
    and cancels it, then promotes and demotes a model. Training itself needs a GPU worker,
    so the promoted model is the row a succeeded run registers, with a passing audit."""
    lea, root = browsers["lea"], browsers["root"]
    curated = lea.post(f"/projects/{project.pk}/curate/", {
        "name": "secrets-set", "difficulty": ["easy", "medium", "hard"], "test_fraction": "0.25",
    })  # fmt: skip
    assert curated.status_code == 302, curated.content.decode()[:1000]
    dataset = project.datasets.get()
    download = lea.get(f"/datasets/{dataset.identifier}/download/jsonl/")
    assert download.status_code == 200 and b"".join(download.streaming_content)

    launched = launch(root, dataset)
    assert launched.status_code == 302, launched.content.decode()[:1000]
    run = TrainingRun.objects.get(dataset=dataset)
    assert root.post(f"/runs/{run.pk}/cancel/").status_code == 302

    succeeded = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.SUCCEEDED)
    model = RewardModel.objects.create(
        identifier="rm-secrets", run=succeeded, project=project, dataset=dataset,
        base_model=succeeded.base_model, artifact=str(tmp_path),
    )  # fmt: skip
    passing_audit(model)
    url = f"/models/{model.identifier}/promotion/"
    assert root.post(url, {"reason": "best so far"}).status_code == 302
    assert root.post(url, {"demote": "1", "reason": "drifted"}).status_code == 302


def sign_in_with_corp(client: Client, username: str, issuer: str) -> str:
    """Sign in through the provider as `username`; the authorization code the site was sent
    (a secret: it buys the person's tokens)."""
    pressed = client.post("/accounts/oidc/corp/login/")
    callback = urlsplit(at_the_provider(pressed.url, username, issuer))
    client.get(f"{callback.path}?{callback.query}", follow=True)
    return parse_qs(callback.query)["code"][0]


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """A real OpenID Connect provider (tests/accounts/provider.py), named "corp" here."""
    callbacks = ["http://testserver/accounts/oidc/corp/login/callback/"]
    with running_provider(tmp_path_factory.mktemp("provider"), callbacks) as running:
        yield running


def single_sign_on_flows(provider, settings, secrets: dict) -> None:
    """A first sign-in through the provider (which joins the project from a group), one
    refused for its e-mail domain, and one the provider refuses for a wrong client secret."""
    secrets |= {"the OIDC client secret": provider.secret,
                "a wrong OIDC client secret": WRONG_CLIENT_SECRET,
                "the password at the provider": PROVIDER_PASSWORD}  # fmt: skip
    joins = {"labellers": [{"project": "Secrets", "role": "annotator"}]}
    use_providers(settings, providers_json(provider, allowed_domains=["example.org"], groups=joins))
    alice = Client()
    secrets["alice's code"] = sign_in_with_corp(alice, "alice", provider.issuer)
    assert alice.session.get("_auth_user_id"), "alice is signed in"
    alice.post("/accounts/logout/")
    secrets["mallory's code"] = sign_in_with_corp(Client(), "mallory", provider.issuer)
    use_providers(settings, providers_json(provider, secret=WRONG_CLIENT_SECRET))
    secrets["alice's second code"] = sign_in_with_corp(Client(), "alice", provider.issuer)
    refusals = ActivityEntry.objects.filter(kind=Kind.SIGN_IN_FAILED)
    assert refusals.filter(summary__startswith="Refused by Corp SSO").count() == 2


def everything_the_log_shows(admin: Client, monkeypatch) -> dict[str, str]:
    """Each place the log keeps or shows its entries, as text: every row's every field, the
    page (every page of it, ten entries a page), the export and the command's output."""
    entries = list(ActivityEntry.objects.order_by("id"))
    rows = list(ActivityEntry.objects.order_by("id").values())
    shown = {
        "the rows": json.dumps(rows, default=str, ensure_ascii=False),
        "the entries as text": "\n".join(str(entry) for entry in entries),
    }
    monkeypatch.setattr(
        "annotation.activity.views.entries_page", partial(selectors.entries_page, size=10)
    )
    url, pages = "/activity/", []
    while url:
        page = admin.get(url)
        assert page.status_code == 200
        pages.append(page.content.decode())
        older = re.search(r'href="\?([^"]+)" rel="next"', pages[-1])
        url = f"/activity/?{unescape(older.group(1))}" if older else ""
    listed = sum(page.count('class="activity-entry"') for page in pages)
    assert len(pages) > 1 and listed == len(entries)
    shown["the activity pages"] = "\n".join(pages)
    export = admin.get("/activity/export.jsonl")
    shown["the export"] = b"".join(export.streaming_content).decode()
    assert len(shown["the export"].splitlines()) == len(entries)
    for args in (["--json"], []):
        out = io.StringIO()
        call_command("activity", "--limit", "0", *args, stdout=out)
        shown[f"manage.py activity {' '.join(args)}".strip()] = out.getvalue()
    assert len(json.loads(shown["manage.py activity --json"])) == len(entries)
    return shown


def test_nothing_logged_carries_a_password_token_key_or_secret(
    db, settings, provider, monkeypatch, tmp_path
):
    secrets: dict[str, str] = {}  # what appears nowhere in the log: what it is -> its value
    browsers = password_flows(secrets, settings)
    project = project_flows(browsers)
    token_flows(browsers, project, secrets, tmp_path)
    review_flows(browsers, project)
    judge_flows(browsers, project, secrets)
    model_flows(browsers, project, tmp_path)
    single_sign_on_flows(provider, settings, secrets)
    for name, browser in browsers.items():
        secrets[f"{name}'s session key"] = browser.cookies["sessionid"].value
    for name in ("lea", "ann"):  # root stays, to read the log
        browsers[name].post("/accounts/logout/")

    kinds = set(ActivityEntry.objects.values_list("kind", flat=True))
    assert set(Kind.values) - kinds == set(), "every kind of entry was driven"
    shown = everything_the_log_shows(browsers["root"], monkeypatch)
    assert all(len(secret) >= 12 for secret in secrets.values()), secrets
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in shown.items()
        if secret in text
    ]
    assert not leaks, "secrets in the log:\n" + "\n".join(leaks)
