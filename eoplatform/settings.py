"""Cryolabel settings, read from the environment with embedded defaults.

Unset, every variable falls back to the embedded mode used by `make demo`: SQLite, a Celery
broker on the filesystem (no server) and an in-process channel layer. Set, each one switches
its part to the deployed service (PostgreSQL, Redis, channels_redis).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CRYOLABEL_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


# Off unless asked for (`make demo` asks): Django's debug page shows settings and tracebacks to anyone.
DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment. Without one, the embedded mode (no DATABASE_URL) keeps a random key of its
    own in VAR_DIR/secret_key, made on first use and readable by this user only; a deployment (DATABASE_URL set)
    with DEBUG off refuses to start: a known or changing key would let anyone forge sessions and tokens."""
    from django.core.exceptions import ImproperlyConfigured

    if key := os.environ.get("SECRET_KEY", "").strip():
        return key
    if os.environ.get("DATABASE_URL", "").strip() and not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set: a deployment (DATABASE_URL set, DEBUG off) needs its own "
                                   "secret key, e.g. SECRET_KEY=$(python -c 'import secrets; "
                                   "print(secrets.token_urlsafe(50))')")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Written whole under another name, then linked into place: a process starting at the same moment either
        # finds the finished file or loses the race to link (and reads the winner's key).
        tmp = VAR_DIR / f".secret_key.{os.getpid()}"
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    "daphne",
    # SimpleAdminConfig: no autodiscovery, because django-leaflet's admin module imports GeoDjango,
    # which needs a system GDAL the embedded mode does without. eoplatform.urls registers ours.
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "channels",
    "leaflet",
    "axes",
    "accounts",
    "jobs",
    "annotations",
    "training",
    "inference",
    "frontend",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out log-in into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "eoplatform.urls"
WSGI_APPLICATION = "eoplatform.wsgi.application"
ASGI_APPLICATION = "eoplatform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.roles",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Under ASGI every request may run in another thread: a pool bounds the connections
        # (persistent per-thread connections would exhaust the server's max_connections).
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": int(os.environ.get("DATABASE_POOL_SIZE", "10")),
            "timeout": 30,
        }
        # A server that does not answer fails a connection attempt in seconds, not after the TCP timeout.
        DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(VAR_DIR / "cryolabel.sqlite3")),
            # The web process and the worker write to one file: WAL lets readers go on while
            # one writes, IMMEDIATE takes the write lock up front instead of failing mid-way.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # Each request thread keeps its connection (checked before reuse): reopening the file and running the
            # pragmas cost ~1.1 ms per request (bench_tiles: a cached tile 3.1 -> 1.9 ms).
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }
# Test databases must be files (not :memory:) so that the worker and Daphne started by the
# integration tests see the same rows as the test process.
_test_suffix = os.environ.get("CRYOLABEL_TEST_DB_SUFFIX", "")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("SQLITE_TEST_PATH", str(VAR_DIR / f"test{_test_suffix}.sqlite3"))
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_test_suffix}"}

# Threads that run HTTP requests in each server process (eoplatform.http_bridge); keep it at or under
# DATABASE_POOL_SIZE so that a request never waits for a connection.
CRYOLABEL_HTTP_THREADS = int(os.environ.get("CRYOLABEL_HTTP_THREADS", "8"))
# What runs those threads (eoplatform/asgi.py): "builtin", the platform's own bridge (eoplatform.http_bridge), or
# "a2wsgi", a2wsgi's WSGIMiddleware (bench/bench_crowd_queue.py --bridge both compares them; see bench/README.md).
CRYOLABEL_HTTP_BRIDGE = os.environ.get("CRYOLABEL_HTTP_BRIDGE", "builtin").strip().lower()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- auth -------------------------------------------------------------------------------------
# django-axes first (it refuses log-ins while an account or a client is locked out), then ModelBackend with each
# user's permission set kept in the process for a few seconds (accounts/backends.py).
AUTHENTICATION_BACKENDS = ["accounts.backends.LoginThrottle", "accounts.backends.CachedModelBackend"]
# Log-in throttling (the log-in page and the admin's): after CRYOLABEL_LOGIN_FAILURE_LIMIT failed attempts for one
# username, or from one client address, log-ins are refused (429, even with the right password) for
# CRYOLABEL_LOGIN_COOLOFF_MINUTES. A success clears the account's count.
AXES_FAILURE_LIMIT = int(os.environ.get("CRYOLABEL_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("CRYOLABEL_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
# The test suite only (tests/conftest.py sets it, for itself and the Daphne and worker processes it starts): a fast
# password hash, as Django's testing docs advise; PBKDF2 costs ~0.3 s a user and the suite makes hundreds. Never set
# it anywhere else: MD5 is no protection for a stolen password table.
if os.environ.get("CRYOLABEL_TESTS_FAST_PASSWORD_HASHES") == "1":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- files ------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Whitenoise also serves straight from the app folders, so the embedded mode needs no collectstatic, DEBUG or not.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous API call then gets 401 with a WWW-Authenticate header.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "eoplatform.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # Requests per client (anonymous: by address) and per user; generous for people, a wall for scripts gone wild.
    "DEFAULT_THROTTLE_CLASSES": ["eoplatform.throttling.AnonCounterThrottle",
                                 "eoplatform.throttling.UserCounterThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": os.environ.get("CRYOLABEL_API_ANON_RATE", "60/minute"),
                               "user": os.environ.get("CRYOLABEL_API_USER_RATE", "3000/minute")},
    # JSON bodies nested too deeply for Python's parser are a 400, not a RecursionError (eoplatform/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["eoplatform.parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cryolabel API",
    "DESCRIPTION": "Label cryosphere Earth-observation data, train networks on it, review their predictions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI served from our own static files: the platform works with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "").strip() or "filesystem://"
BROKER_FOLDER = Path(os.environ.get("CELERY_BROKER_FOLDER", VAR_DIR / "broker"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: one folder the producers write to and the worker polls.
    # Its options are set only here, so they never reach another broker.
    for _sub in ("queue", "processed", "control"):
        (BROKER_FOLDER / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        # Broadcasts (revoke, ping) go through this folder; kombu's default is ./control.
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
    if os.environ.get("CELERY_KEY_PREFIX"):
        # Lets two test runs share one Redis without eating each other's tasks.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_KEY_PREFIX"]
CELERY_RESULT_BACKEND = "django-db"
CELERY_TASK_IGNORE_RESULT = True  # the Job row is the record of a job, not the result backend
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "UTC"

# --- Channels ---------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "").strip()
# The cache holds the API's throttle counters: shared by every process through Redis when there is one.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": os.environ.get("CHANNELS_PREFIX", "cryolabel")}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": os.environ.get("CHANNELS_PREFIX", "cryolabel"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- jobs -------------------------------------------------------------------------------------
# How often a /ws/jobs/ socket looks for changed jobs in the database. The row is the single
# source of truth; a Redis channel layer only wakes the socket sooner.
JOBS_POLL_SECONDS = float(os.environ.get("CRYOLABEL_JOBS_POLL_SECONDS", "0.5"))
# The process running a job touches its row this often; a running job silent for CRYOLABEL_JOB_LOST_SECONDS is
# failed (or, for training, requeued) by the sweep every worker runs every CRYOLABEL_JOB_SWEEP_SECONDS.
CRYOLABEL_JOB_HEARTBEAT_SECONDS = float(os.environ.get("CRYOLABEL_JOB_HEARTBEAT_SECONDS", "15"))
CRYOLABEL_JOB_LOST_SECONDS = int(os.environ.get("CRYOLABEL_JOB_LOST_SECONDS", "90"))
CRYOLABEL_JOB_SWEEP_SECONDS = float(os.environ.get("CRYOLABEL_JOB_SWEEP_SECONDS", "30"))
# /healthz answers 503 when the database or the broker has not answered within this (eoplatform.health).
CRYOLABEL_HEALTH_TIMEOUT_SECONDS = float(os.environ.get("CRYOLABEL_HEALTH_TIMEOUT_SECONDS", "2.5"))

# --- labelling --------------------------------------------------------------------------------
CRYOLABEL_VOTES_PER_ITEM = int(os.environ.get("CRYOLABEL_VOTES_PER_ITEM", "3"))  # k
CRYOLABEL_GOLD_RATE = float(os.environ.get("CRYOLABEL_GOLD_RATE", "0.1"))  # share of gold items in the queue
CRYOLABEL_ASSIGNMENT_SECONDS = int(os.environ.get("CRYOLABEL_ASSIGNMENT_SECONDS", "900"))  # queue lease
CRYOLABEL_CONSENSUS_METHOD = os.environ.get("CRYOLABEL_CONSENSUS_METHOD", "dawid_skene")
CRYOLABEL_CONSENSUS_EVERY = int(os.environ.get("CRYOLABEL_CONSENSUS_EVERY", "25"))  # completed items per re-run
CRYOLABEL_SETTLED_AGREEMENT = float(os.environ.get("CRYOLABEL_SETTLED_AGREEMENT", "0.6"))
# New curated labels (decisions, imports, accepted predictions, settled consensus) since the last training's
# snapshot that start a training on their own; 0 = off. The first training is always started by someone.
CRYOLABEL_RETRAIN_AFTER = int(os.environ.get("CRYOLABEL_RETRAIN_AFTER", "100"))
# Track collocation (annotations.services.collocation): scenes within this many hours of a track label its
# waveforms; a nadir closer than this many metres to a lead polygon is a lead.
CRYOLABEL_COLLOCATION_WINDOW_H = float(os.environ.get("CRYOLABEL_COLLOCATION_WINDOW_H", "3"))
CRYOLABEL_LEAD_DISTANCE_M = float(os.environ.get("CRYOLABEL_LEAD_DISTANCE_M", "200"))
# How long the review queue keeps an item it showed to one expert from the others.
CRYOLABEL_REVIEW_LEASE_SECONDS = int(os.environ.get("CRYOLABEL_REVIEW_LEASE_SECONDS", "300"))
CRYOLABEL_MAX_UPLOAD_MB = int(os.environ.get("CRYOLABEL_MAX_UPLOAD_MB", "2048"))
# Any other request body (JSON, forms); bigger ones, and uploads from anyone but an admin, are refused unread.
CRYOLABEL_MAX_REQUEST_MB = int(os.environ.get("CRYOLABEL_MAX_REQUEST_MB", "10"))
# Folders (besides the uploads) a web request may point an ingest job at; the command line reads any path.
CRYOLABEL_IMPORT_ROOTS = env_list("CRYOLABEL_IMPORT_ROOTS", "")
# An imagette is ~20 km at 5-10 m (2 000-5 000 pixels a side): files declaring far more are refused before their
# pixels are decoded (a few KB of sparse or compressed file can declare gigabytes).
CRYOLABEL_MAX_IMAGETTE_PIXELS = int(os.environ.get("CRYOLABEL_MAX_IMAGETTE_PIXELS", "36000000"))
CRYOLABEL_MAX_IMAGETTE_SIDE = int(os.environ.get("CRYOLABEL_MAX_IMAGETTE_SIDE", "12000"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- inference --------------------------------------------------------------------------------
# Items per forward pass of a prediction job; 0: 256 on a GPU, 64 on a CPU.
CRYOLABEL_PREDICT_BATCH = int(os.environ.get("CRYOLABEL_PREDICT_BATCH", "0"))

# --- exports ----------------------------------------------------------------------------------
# Exports under MEDIA_ROOT/exports keep their files for the latest N of each format; older ones are pruned
# (row kept, download 410 with the reason). 0 = keep every export.
CRYOLABEL_EXPORTS_KEEP = max(0, int(os.environ.get("CRYOLABEL_EXPORTS_KEEP", "3")))

# --- leaflet ----------------------------------------------------------------------------------
LEAFLET_CONFIG = {"TILES": [], "NO_GLOBALS": False, "RESET_VIEW": False}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
