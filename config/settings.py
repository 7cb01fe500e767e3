"""Cutline settings: one file, every knob read from the environment.

The runtime file ``var/runtime.env`` (written by ``make run``) supplies the address of
the bundled Redis, the broker and the database (``DATABASE_URL``) to every command
started later from another shell, so the CLI talks to the same system ``make run``
started. Anything set in the real environment wins.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.private_var import keep_private

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CUTLINE_VAR_DIR", BASE_DIR / "var"))
RUNTIME_ENV = VAR_DIR / "runtime.env"


def _runtime_env() -> dict[str, str]:
    if not RUNTIME_ENV.exists():
        return {}
    pairs = (line.split("=", 1) for line in RUNTIME_ENV.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


_RUNTIME = _runtime_env()


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, _RUNTIME.get(name, default))


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(env(name, str(default)))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def env_networks(name: str, default: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        return [ipaddress.ip_network(item) for item in env_list(name, default)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc} (give addresses or networks, e.g. 10.0.0.0/8,::1)") from None


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """``HTTP_X_FORWARDED_PROTO,https`` → the pair Django's SECURE_PROXY_SSL_HEADER takes."""
    value = env(name)
    if not value:
        return None
    header, _, expected = (part.strip() for part in value.partition(","))
    if not header.startswith("HTTP_") or not expected:
        raise ImproperlyConfigured(f"{name} must look like HTTP_X_FORWARDED_PROTO,https (got {value!r})")
    return header, expected


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/."""
    if env("SECRET_KEY"):
        return env("SECRET_KEY")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "snapshots",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware (its redirects and headers apply to static files too).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Scripts from this site's files only (config/csp.py).
    "config.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------
# SQLite by default. Several worker processes write records at once, so: WAL (readers
# never block the writer), IMMEDIATE transactions (a writer takes the lock when its
# transaction begins, so two writers queue on busy_timeout instead of deadlocking on a
# read-to-write upgrade, which SQLite reports at once as "database is locked").
SQLITE_PATH = Path(env("CUTLINE_SQLITE_PATH", str(VAR_DIR / "cutline.sqlite3")))
# No persistent connections by default: Daphne runs each sync view in a thread of its
# own, so a kept connection is never reused and only piles up (Django's ASGI docs).
# Give a pooler (PgBouncer) in DATABASE_URL, or raise CUTLINE_DB_CONN_MAX_AGE for
# processes that are not Daphne (the workers, the CLI).
DB_CONN_MAX_AGE = env_int("CUTLINE_DB_CONN_MAX_AGE", 0)
if env("DATABASE_URL"):
    DATABASES = {
        "default": dj_database_url.parse(env("DATABASE_URL"), conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=True)
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# WhiteNoise serves static files from Daphne with cache headers (ETag, Last-Modified,
# max-age) and, for the copies `manage.py collectstatic` compressed into STATIC_ROOT
# (`make run` collects at every start), gzip. The names carry no hash, so browsers
# revalidate after STATIC_MAX_AGE seconds rather than keep a stale script forever.
# Without a collected STATIC_ROOT (the tests, a bare `daphne`) it serves the source
# folders, uncompressed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = not STATIC_ROOT.is_dir()
if WHITENOISE_USE_FINDERS:
    # WhiteNoise would warn at every start that STATIC_ROOT is missing: that is expected here.
    warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
WHITENOISE_MAX_AGE = env_int("CUTLINE_STATIC_MAX_AGE", 3600)
WHITENOISE_ALLOW_ALL_ORIGINS = False  # only Cutline's own pages load these (WhiteNoise would send "*")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- broker, state store, channel layer -------------------------------------------------
# REDIS_URL: the runtime state store (process states, event logs, records on their way
# to the database) and the channel layer. CELERY_BROKER_URL defaults to the same Redis;
# point it at RabbitMQ (amqp://guest:guest@127.0.0.1:5672//) to use that instead.
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", REDIS_URL)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}

# --- the simulated cluster ----------------------------------------------------------------
CUTLINE = {
    # Shards: a worker started with --shard i of --shards N serves processes whose index
    # in their run is i modulo N. Every worker of one deployment must agree on N.
    "SHARDS": env_int("CUTLINE_SHARDS", 1),
    "SNAPSHOT_TIMEOUT": env_float("CUTLINE_SNAPSHOT_TIMEOUT", 60.0),
    "EVENT_LOG_LIMIT": env_int("CUTLINE_EVENT_LOG_LIMIT", 20000),
    "DEFAULT_RATE": env_float("CUTLINE_DEFAULT_RATE", 2.0),
    "PUBLIC_READ": env_bool("CUTLINE_PUBLIC_READ", False),
    # Who may read /metrics: a client from one of these networks, or anyone sending
    # "Authorization: Bearer <METRICS_TOKEN>" (snapshots/web/health.py).
    "METRICS_NETWORKS": env_networks("CUTLINE_METRICS_NETWORKS", "127.0.0.0/8,::1"),
    "METRICS_TOKEN": env("CUTLINE_METRICS_TOKEN"),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per user (token or session) and, for anonymous reads (CUTLINE_PUBLIC_READ), per
    # client address; counted in the cache below, so every Daphne host shares the count.
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env("CUTLINE_THROTTLE_ANON", "120/min"),
        "user": env("CUTLINE_THROTTLE_USER", "1200/min"),
    },
}
# Django's cache is the API throttle's counter: in Redis, shared by every Daphne host.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cutline:cache",
    }
}

SPECTACULAR_SETTINGS = {
    # The interactive API page serves Swagger UI from the bundled sidecar: nothing from the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI's default validator badge loads from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- behind TLS ---------------------------------------------------------------------------
# Off by default (`make run` serves plain HTTP on loopback); a deployment behind TLS turns
# them on from the environment, and `manage.py check --deploy` is then clean (README,
# "Operating Cutline"). Health checks and scrapes are not redirected: load balancers
# probe over plain HTTP.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)

# --- var/ is the owner's alone (config/private_var.py) -----------------------------------
# The database holds sessions, tokens and password hashes: var/ 0700, the SQLite files 0600.
keep_private(VAR_DIR, [] if env("DATABASE_URL") else [SQLITE_PATH])

# --- request bodies ------------------------------------------------------------------------
# The largest body the API, the admin's import and the CLI's import read (Django's default,
# said out loud): beyond it a 413 in JSON, a form error, or a CLI error.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CUTLINE_MAX_BODY_BYTES", 2_621_440)

# --- the API's schema (snapshots/api/urls.py serves it) -------------------------------------
# Settings, not the view's own: `manage.py spectacular` (and --validate, in make lint)
# then writes exactly the schema /api/schema/ serves.
SPECTACULAR_SETTINGS |= {
    "TITLE": "Cutline API",
    "DESCRIPTION": (
        "Topologies, runs and the history of Chandy–Lamport snapshots taken of them. "
        "Scripts authenticate with `Authorization: Token <key>` (create one with "
        "`manage.py drf_create_token USER`); the browser uses its session."
    ),
    "VERSION": "1",
    # Runs and snapshots both have a status, with different choices.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "snapshots.models.Run.Status",
        "SnapshotStatusEnum": "snapshots.models.Snapshot.Status",
        "AlgorithmEnum": "snapshots.models.ALGORITHM_CHOICES",
        "SideEnum": "snapshots.api.serializers.SIDES",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "WARNING")},
    "loggers": {"cutline": {"level": env("CUTLINE_LOG_LEVEL", "INFO"), "propagate": True}},
}
