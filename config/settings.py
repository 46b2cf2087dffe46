"""Settings, read from the environment. The README lists every variable.

With nothing set, everything runs on one machine: SQLite, a filesystem Celery broker,
local file storage. DATABASE_URL and CELERY_BROKER_URL switch to PostgreSQL and Redis.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured

from annotation.accounts import providers as sso

BASE_DIR = Path(__file__).resolve().parent.parent
# Embedded defaults keep their files here: the SQLite database, the broker's queue, media.
VAR_DIR = Path(os.environ.get("PREFHUB_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def local_secret_key(folder: Path) -> str:
    """A key made once for this machine and kept in `folder`, readable by its owner only, so
    that every command works with no environment and nothing predictable signs sessions.
    Written beside and linked into place: two processes starting together read one key.
    Production sets SECRET_KEY, the same on every host (it also encrypts judges' API keys)."""
    path = folder / "secret_key"
    if not path.exists():
        draft = folder / f".secret_key.{os.getpid()}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            draft.unlink()
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.reporting.SecretsHidden"
SECRET_KEY = os.environ.get("SECRET_KEY") or local_secret_key(VAR_DIR)

# Behind HTTPS (a proxy that sets X-Forwarded-Proto): HSTS, https redirects and cookies only.
HTTPS = env_bool("DJANGO_HTTPS", False)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
# Scripts only from this site's files (no inline script, no CDN); styles may be inline
# (charts and colour swatches use style attributes).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens, stored hashed; its model is swapped for annotation.ApiToken
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    *sso.ALLAUTH_APPS,  # single sign-on (OIDC_PROVIDERS)
    "annotation",
    "rewardmodels",
    "workers",  # its management commands: evaluate, score and filter run the ML core here
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicy",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestSizeLimit",
    "config.middleware.RejectNulBytes",
    "config.middleware.DatabaseUnavailable",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "annotation.activity.log.ActivityContext",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers for locked-out logins
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "annotation.context_processors.navigation",
            ],
        },
    },
]

# A kept connection is checked at the first query of each request and replaced if the
# database ended it (a restart or failover ends them all), instead of failing that request.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the local worker write to one file without "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL's JIT compiles the dashboard's 100,000-row query for longer (about 270 ms)
    # than the query then runs; short web queries never gain from it.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Login throttling (django-axes, counted in the database, so every web process agrees):
# after AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
# refused for AXES_COOLOFF_MINUTES, the right password included. `manage.py axes_reset`
# lifts every lockout.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "annotation.accounts.backends.PasswordBackend",  # ModelBackend, off with PASSWORD_LOGIN=0
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# Single sign-on: the OpenID Connect providers of OIDC_PROVIDERS through django-allauth, beside
# the password form, which PASSWORD_LOGIN=0 takes away (annotation/accounts/providers.py).
PASSWORD_LOGIN = env_bool("PASSWORD_LOGIN", True)
SOCIALACCOUNT_PROVIDERS = sso.oidc_providers(os.environ.get("OIDC_PROVIDERS", ""), PASSWORD_LOGIN)
globals().update(sso.ALLAUTH_SETTINGS)
CONTENT_SECURITY_POLICY = sso.form_action_with(CONTENT_SECURITY_POLICY, SOCIALACCOUNT_PROVIDERS)

# Mail, for password resets: EMAIL_URL, e.g. submission://user:password@mail.example.org
# (STARTTLS on 587) or smtp://mail.example.org:465?ssl=True. Unset, the site sends no mail
# and the reset page says that an admin sets new passwords.
EMAIL_URL = os.environ.get("EMAIL_URL", "")
if EMAIL_URL:
    _mail = dj_email_url.parse(EMAIL_URL)
    if "EMAIL_BACKEND" not in _mail:
        raise ImproperlyConfigured(
            f"EMAIL_URL: unknown scheme {EMAIL_URL.split(':', 1)[0]!r}; use smtp, submission, "
            "console, file, memory or dummy."
        )
    _mail["EMAIL_TIMEOUT"] = _mail["EMAIL_TIMEOUT"] or 10  # a dead server fails the request
    globals().update(_mail)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "prefhub@localhost")
PASSWORD_RESET_BY_MAIL = bool(EMAIL_URL)

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # collectstatic's target: optional, WhiteNoise reads it too
# WhiteNoise serves static files from the web process, debug on or off, straight from the
# apps' static folders: no collectstatic step.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

# Celery: Redis in production; with no broker configured, a filesystem broker needs no server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
if not CELERY_BROKER_URL:
    # The host is named though the broker is folders on this machine: kombu warns "No
    # hostname was supplied" each time it reads a broker URL without one (every send).
    CELERY_BROKER_URL = "filesystem://localhost//"
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    # Seconds before Redis hands an unacknowledged message (a task whose worker died) to
    # another worker. Training runs do not rely on it (their leases bring a dead worker's run
    # back within minutes, on any broker); a redelivered run that another worker holds is
    # left to it. A connection attempt gives up after two seconds: a web request says the
    # broker is down rather than waiting on it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(24 * 3600))),
        "socket_connect_timeout": 2,
    }
# Results only for the tasks that are waited on (API scoring); everything else writes rows.
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_RESULT_BACKEND = CELERY_BROKER_URL
else:
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"
    (VAR_DIR / "results").mkdir(parents=True, exist_ok=True)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Everything that needs a GPU where there is one has its own queue: training runs, which
# hold a worker for hours, on "gpu"; evaluations, filters and audits, in parts, on
# "scoring", served by a worker of its own on each GPU machine, so that they go on while a
# run trains. What a person waits for has queues of its own, each with a worker that serves
# nothing else, so that it never waits behind an evaluation's parts or a judging job:
# "interactive" (scores and best-of-N, on the scoring hosts, whose scoring workers also
# serve it) and "interactive_judge" (a judge's preview, on the hosts that run judging jobs:
# their network and their API keys). Anything else goes to "celery".
CELERY_TASK_ROUTES = {
    "rewardmodels.train": {"queue": "gpu"},
    "rewardmodels.evaluate": {"queue": "scoring"},
    "rewardmodels.filter": {"queue": "scoring"},
    "rewardmodels.audit": {"queue": "scoring"},
    "rewardmodels.score_chunk": {"queue": "scoring"},
    "rewardmodels.gather_scores": {"queue": "scoring"},
    # Where the result backend has no native chords (the embedded filesystem one), Celery
    # polls for a scored job's parts with this task: on the queue whose workers score them.
    "celery.chord_unlock": {"queue": "scoring"},
    "rewardmodels.score_candidates": {"queue": "scoring"},
    "rewardmodels.score": {"queue": "interactive"},
    "annotation.judge_ask": {"queue": "interactive_judge"},
}
# Seconds a web request waits for a worker's answer (a score, best-of-N, a judge's preview)
# before it answers 503 with Retry-After; the task expires then too, so a worker that takes
# it later drops it unrun.
INTERACTIVE_WAIT_SECONDS = float(os.environ.get("INTERACTIVE_WAIT_SECONDS", "15"))
# A judge's key variable: a worker's variable named *_API_KEY or one of these (commas).
JUDGE_KEY_VARIABLES = set(os.environ.get("JUDGE_KEY_VARIABLES", "").replace(",", " ").split())
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Celery beat (`celery -A workers beat`; make run embeds it in its worker): retraining by
# the label count, retrainings moved on if an event was lost with a worker, search indexing,
# weighted consensus refitted, the activity log trimmed.
CELERY_BEAT_SCHEDULE = {
    "retrain-due": {
        "task": "rewardmodels.retrain_due",
        "schedule": float(os.environ.get("RETRAIN_CHECK_SECONDS", "300")),
    },
    # Pairs made other than by import (rounds, the admin) become searchable within a minute.
    "index-search": {"task": "annotation.index_search", "schedule": 60.0},
    "refit-consensus": {
        "task": "annotation.refit_consensus",
        "schedule": float(os.environ.get("CONSENSUS_REFIT_SECONDS", "600")),
    },
    "trim-activity": {"task": "annotation.trim_activity", "schedule": 24 * 3600.0},
}
# Evaluations and filters are scored in parts of this many rows, over the scoring queue.
SCORING_CHUNK_ROWS = int(os.environ.get("SCORING_CHUNK_ROWS", "4096"))
# A part whose worker dies is redelivered; one whose worker dies every time (out of memory)
# fails its job once it has been started this many times without finishing.
SCORING_MAX_DELIVERIES = int(os.environ.get("SCORING_MAX_DELIVERIES", "3"))
# A run whose worker dies resumes; one dying every time (out of memory) fails after this many.
TRAINING_MAX_DELIVERIES = int(os.environ.get("TRAINING_MAX_DELIVERIES", "3"))
# A worker training a run renews its lease on it every third of this; a run whose lease
# has run out (its worker died) is sent again by the recovery sweep every worker runs when
# it starts and every TRAINING_RECOVERY_SECONDS, on any broker. A run not taken that long
# after it was sent (the broker lost its message) is sent again after TRAINING_RESEND_SECONDS;
# a judging job, evaluation, filter or audit after JOB_RESEND_SECONDS (annotation.jobs).
TRAINING_LEASE_SECONDS = float(os.environ.get("TRAINING_LEASE_SECONDS", "60"))
TRAINING_RECOVERY_SECONDS = float(os.environ.get("TRAINING_RECOVERY_SECONDS", "60"))
TRAINING_RESEND_SECONDS = float(os.environ.get("TRAINING_RESEND_SECONDS", "900"))
JOB_RESEND_SECONDS = float(os.environ.get("JOB_RESEND_SECONDS", "900"))

REST_FRAMEWORK = {
    # The token first: no credentials get 401 with `WWW-Authenticate: Token`, as documented.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "config.inputs.CheckedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # ?format= names a file format on download endpoints, not a DRF renderer.
    "URL_FORMAT_OVERRIDE": None,
}
API_TOKEN_DAYS = int(os.environ.get("API_TOKEN_DAYS", "90"))  # admins may make no-expiry ones
KNOX_TOKEN_MODEL = "annotation.ApiToken"  # django-rest-knox's tokens; its own table is not made
MIGRATION_MODULES = {"knox": None}
SPECTACULAR_SETTINGS = {
    "TITLE": "Prefhub API",
    "DESCRIPTION": "Preference pairs, annotation queues and labels.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and Swagger UI are for signed-in users unless API_DOCS_PUBLIC=1; the UI's
    # files come from drf-spectacular-sidecar, served here.
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny"
        if env_bool("API_DOCS_PUBLIC", False)
        else "rest_framework.permissions.IsAuthenticated"
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.add_error_answers",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        # Jobs on the scoring queue (evaluations, audits) and judging jobs, which can be
        # cancelled: two sets of states both called "status".
        "JobStatusEnum": [
            ("queued", "Queued"),
            ("running", "Running"),
            ("succeeded", "Succeeded"),
            ("failed", "Failed"),
        ],
        "JudgingJobStatusEnum": ["queued", "running", "succeeded", "failed", "cancelled"],
        "LabelChoiceEnum": ["a", "b", "tie"],
        "ScreenChoiceEnum": ["left", "right", "tie"],
    },
}

# JSON request bodies and imported rows nested deeper than this are refused (chat messages
# with metadata need a handful of levels).
JSON_MAX_DEPTH = int(os.environ.get("JSON_MAX_DEPTH", "32"))
# Import limits: a row whose prompt or response is longer than this is rejected.
IMPORT_MAX_FIELD_CHARS = int(os.environ.get("IMPORT_MAX_FIELD_CHARS", "100000"))
IMPORT_MAX_METADATA_CHARS = int(os.environ.get("IMPORT_MAX_METADATA_CHARS", "20000"))
# A JSONL or CSV line longer than this many megabytes refuses the whole import as soon as it
# is read: far above any row the field limits allow, far below the upload limit.
IMPORT_MAX_LINE_MB = float(os.environ.get("IMPORT_MAX_LINE_MB", "16"))
# Request bodies (uploads included) over this many megabytes are refused with a 413.
UPLOAD_MAX_MB = float(os.environ.get("UPLOAD_MAX_MB", "1024"))

# The activity log (annotation.activity): on unless ACTIVITY_LOG=0; entries older than
# ACTIVITY_RETENTION_DAYS are removed by `manage.py activity --trim` (0 keeps them all).
# Behind a proxy that sets X-Forwarded-For, ACTIVITY_TRUST_FORWARDED_FOR=1 logs its address.
ACTIVITY_LOG = os.environ.get("ACTIVITY_LOG", "1") != "0"
ACTIVITY_RETENTION_DAYS = int(os.environ.get("ACTIVITY_RETENTION_DAYS", "365"))
ACTIVITY_TRUST_FORWARDED_FOR = os.environ.get("ACTIVITY_TRUST_FORWARDED_FOR", "0") == "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # The judges' HTTP clients log every request at INFO: two lines a pair.
    "loggers": {name: {"level": "WARNING"} for name in ("httpx", "httpx2", "httpcore2")},
}
