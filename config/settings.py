"""Settings, read from the environment through ``config.env`` (its list documents every variable).

The embedded default is a laptop demo: SQLite under ``DATA_DIR``, Celery tasks run in-process,
the demo model backend.  Production sets ``DATABASE_URL``, ``REDIS_URL`` and ``SECRET_KEY``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent


DEMO_MODE = env.flag("DEMO_MODE")
DEBUG = env.flag("DEBUG", fallback=DEMO_MODE)

DATA_DIR = env.path("DATA_DIR", fallback=BASE_DIR / "data")
MEDIA_ROOT = env.path("MEDIA_ROOT", fallback=DATA_DIR / "media")
MEDIA_URL = "/media/"

SECRET_KEY = env.text("SECRET_KEY")
if not SECRET_KEY:
    if DEMO_MODE or DEBUG or os.environ.get("PYTEST_VERSION"):
        SECRET_KEY = "insecure-demo-key-never-use-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment "
            "(or DEMO_MODE=1 for the local demo)."
        )

ALLOWED_HOSTS = env.items("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.items("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files (no CDN)
    "csp",
    # Two-factor sign-in: TOTP devices and single-use recovery codes (django-otp), the
    # "accounts" app's pages and gate (README "Security").
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "trial",
    "accounts",
    "drafting",
    "reader",
    "rating",
    "notify",
    "pacs",
    "metrics",
    "analysis",
    "monitor",
    "demo",
    "ops",  # /health/live/, /health/ready/ and /metrics (no models)
]

MIDDLEWARE = [
    "ops.middleware.RequestMetricsMiddleware",  # outermost: counts and times whole answers
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # every response gets the policy
    # The probes and /metrics are answered here, with the security headers but before the host
    # check, sessions and the sign-in gates (ops/middleware.py says why).
    "ops.middleware.ProbeMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "trial.middleware.IdleTimeoutMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): code given this session
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Who must give a two-factor code and has not yet reaches only the code or set-up page.
    "accounts.middleware.TwoFactorMiddleware",
    "trial.middleware.ServiceErrorMiddleware",
    # Last: it answers a locked-out sign-in (site, admin) with the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Brute-force protection (django-axes) on every way in that takes a password (the site's and
# the admin's sign-in): after AXES_FAILURE_LIMIT failures an account, and an address, is
# locked for AXES_COOLOFF_MINUTES; a coordinator or superuser unlocks it (audited).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.integer("AXES_FAILURE_LIMIT")
AXES_COOLOFF_TIME = timedelta(minutes=env.number("AXES_COOLOFF_MINUTES"))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no banner in every process's log
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind the reverse proxy the client's address is in X-Forwarded-For: count the proxies
# (accounts/client_ip.py reads the N-th address from the right).
PROXY_COUNT = env.integer("AXES_PROXY_COUNT")  # not AXES_*: axes warns of that name
AXES_CLIENT_IP_CALLABLE = "accounts.client_ip.client_ip"

# Two-factor sign-in (accounts/): required for superusers, coordinators and statisticians, and
# for everyone in a trial that asks for it; the demo's accounts are exempt in DEMO_MODE only.
# After TWO_FACTOR_FAILURE_LIMIT wrong codes in a row, codes are refused for
# TWO_FACTOR_LOCK_MINUTES (django-otp's back-off of 1, 2, 4 ... s applies before that).
# Always enforced: no variable turns it off. (The test suite's fixture switches it off for the
# tests that sign coordinators in without a device; tests/test_two_factor.py and
# tests/browser/test_two_factor.py turn it on again and check that it is on outside pytest.)
TWO_FACTOR_ENFORCED = True
TWO_FACTOR_FAILURE_LIMIT = env.integer("TWO_FACTOR_FAILURE_LIMIT")
TWO_FACTOR_LOCK_MINUTES = env.number("TWO_FACTOR_LOCK_MINUTES")
OTP_TOTP_ISSUER = env.text("TWO_FACTOR_ISSUER")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env.text("DATABASE_URL", fallback=f"sqlite:///{DATA_DIR / 'db.sqlite3'}"),
        conn_max_age=env.integer("DATABASE_CONN_MAX_AGE"),
        # A kept connection is checked before reuse: a restarted database costs no request
        # and no task (workers keep theirs between tasks, see CELERY_DB_REUSE_MAX).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes and threads (web + in-process tasks) share the file: wait instead of
    # failing. IMMEDIATE transactions take the write lock when they start, so two writers queue
    # on the busy timeout instead of one failing with "database is locked" when its read lock
    # cannot be upgraded; WAL lets readers go on while one writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": 20, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's hashers, PBKDF2 first as by default, computed at a lower scheduling priority so a
# sign-in or a signature does not hold up the readers' requests (accounts/hashers.py).
PASSWORD_HASHERS = [
    "accounts.hashers.BackgroundPBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Django's full set, at least 12 characters (demo accounts are made without them, and flagged).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.text("TIME_ZONE")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", fallback=DATA_DIR / "static")

LOGIN_URL = "/accounts/login/"
# Signed out after this many minutes without activity (0: never); see trial.middleware.
SESSION_IDLE_MINUTES = env.number("SESSION_IDLE_MINUTES")
LOGIN_REDIRECT_URL = "/"
# A reading submitted in less than this many seconds is flagged "short_reading" for the
# coordinator (reader.reading): never blocks the submission, never shown to the reader.
READING_MIN_SECONDS = env.number("READING_MIN_SECONDS")

# Uploads: DICOM files can be large; keep big uploads on disk, refuse absurd ones.
DICOM_MAX_FILE_MB = env.integer("DICOM_MAX_FILE_MB")
# Decompression bombs: checked from the DICOM header before anything is inflated or decoded
# (Rows x Columns x frames x samples; decoded bytes at most this many 16-bit pixels), and
# from a zip's central directory before any member is extracted.
DICOM_MAX_PIXELS = env.integer("DICOM_MAX_PIXELS")
DICOM_ZIP_MAX_MEMBERS = env.integer("DICOM_ZIP_MAX_MEMBERS")
DICOM_ZIP_MAX_TOTAL_MB = env.integer("DICOM_ZIP_MAX_TOTAL_MB")
DICOM_ZIP_MAX_RATIO = env.integer("DICOM_ZIP_MAX_RATIO")
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 5000

REDIS_URL = env.text("REDIS_URL")
if REDIS_URL:
    # Sessions read from Redis, kept in the database (accounts/sessions.py says why): a
    # reader's heartbeat and autosave then need no session query. Short timeouts: a Redis
    # that does not answer costs a request one second, then the database answers.
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cxr-cache",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }}
    SESSION_ENGINE = "accounts.sessions"

# Celery: with no REDIS_URL the tasks run in-process (the demo's embedded default).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Celery's Django fixup closes the database connection before and after every task unless this
# is set: a new PostgreSQL connection (connect and authenticate) for every task. Kept instead
# for this many tasks; config/celery.py still drops a connection that is broken or older than
# DATABASE_CONN_MAX_AGE, as Django does per request.
CELERY_DB_REUSE_MAX = 1000
# acks_late on Redis: a task taken by a worker that dies is delivered again after this many
# seconds. Keep it above the longest draft (model timeout x attempts, with backoff).
_visibility_s = env.integer("CELERY_VISIBILITY_TIMEOUT")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _visibility_s,
    # Workers look for such messages every interval x throttle seconds (kombu: 10 x 10): scan
    # every interval instead, at most 10 s and at most half the visibility timeout.
    "unacked_restore_interval": max(1, min(10, _visibility_s // 2)),
    "unacked_restore_throttle": 1,
}
# A running draft whose worker went silent is taken over (sent again) within
# DRAFT_TAKEOVER_SECONDS of its lease running out: the model call's timeout plus this margin.
DRAFT_LEASE_MARGIN_S = env.number("DRAFT_LEASE_MARGIN_S")
DRAFT_TAKEOVER_SECONDS = env.number("DRAFT_TAKEOVER_SECONDS")
# Sending a draft's task waits at most this long for Redis, then leaves it to the sweep.
DRAFT_SEND_TIMEOUT_S = env.number("DRAFT_SEND_TIMEOUT_S")
CELERY_BEAT_SCHEDULE = {
    "send-notifications": {  # batched e-mails (notify.send); each person at most once a period
        "task": "notify.tasks.send_notifications",
        "schedule": env.number("NOTIFY_SECONDS"),
        "options": {"expires": 3000},
    },
    "sweep-chat-jobs": {  # the LLM labeller's and judge's rows never sent or lost
        "task": "metrics.tasks.sweep_chat_jobs",
        "schedule": env.number("DRAFT_SWEEP_SECONDS"),
    },
    "sweep-drafts": {
        "task": "trial.tasks.sweep_drafts",
        "schedule": env.number("DRAFT_SWEEP_SECONDS"),
    },
    "sweep-report-deliveries": {  # final reports to sites' PACS never sent or lost
        "task": "pacs.tasks.sweep_deliveries",
        "schedule": env.number("DRAFT_SWEEP_SECONDS"),
    },
    "take-over-drafts": {
        "task": "drafting.tasks.take_over_drafts",
        "schedule": DRAFT_TAKEOVER_SECONDS,
        # Checks queued behind a backlog of over 10 minutes are dropped (no pile-up while no
        # worker runs); the sweep, which never expires, takes those drafts over too.
        "options": {"expires": 600},
    },
}

# DICOM networking (pacs/): the listener's AE title and port, where received instances wait,
# and how long a study must be quiet (no new instance) before it is imported.
DICOM_LISTENER_AE_TITLE = env.text("DICOM_LISTENER_AE_TITLE")
DICOM_LISTENER_PORT = env.integer("DICOM_LISTENER_PORT")
DICOM_SPOOL_DIR = env.path("DICOM_SPOOL_DIR", fallback=DATA_DIR / "spool")
DICOM_STUDY_QUIET_SECONDS = env.number("DICOM_STUDY_QUIET_SECONDS")
# Environment variables a model endpoint, labeller, judge or PACS node may name for its key:
# those starting with CXR_ and these (trial/secrets.py); never the platform's own settings.
SECRET_ENV_NAMES = env.items("SECRET_ENV_NAMES")
# The key (a Fernet key) that encrypts the original study identifiers a site allows the
# platform to keep (pacs.UidLink). Empty: none are kept, reports carry pseudonymous ids.
PACS_UID_KEY = env.text("PACS_UID_KEY")
# The platform's AE title when it calls a PACS (C-FIND, C-MOVE, C-STORE of reports); C-MOVE
# sends studies to the listener (DICOM_LISTENER_AE_TITLE).
DICOM_CALLING_AE_TITLE = env.text("DICOM_CALLING_AE_TITLE")
# Sending signed final reports to sites' PACS (pacs.delivery): attempts before a delivery
# fails (connection errors, timeouts, rejections, 5xx), and the backoff's base (seconds).
PACS_DELIVERY_MAX_ATTEMPTS = env.integer("PACS_DELIVERY_MAX_ATTEMPTS")
PACS_DELIVERY_BACKOFF_S = env.number("PACS_DELIVERY_BACKOFF_S")

# Work counted as overdue (dashboard, coordinators' e-mails): a reading open longer than
# OVERDUE_READING_HOURS, a case ready for a senior longer than OVERDUE_REVIEW_DAYS.
OVERDUE_READING_HOURS = env.number("OVERDUE_READING_HOURS")
OVERDUE_REVIEW_DAYS = env.number("OVERDUE_REVIEW_DAYS")
# How often the trial dashboard's page asks for fresh counts.
MONITOR_POLL_SECONDS = env.number("MONITOR_POLL_SECONDS")

# Behind nginx (the compose stack): after the access check, the viewer's cached pixel and
# preview files are handed to nginx with "X-Accel-Redirect: <X_ACCEL_MEDIA_PREFIX><path under
# MEDIA_ROOT>", an internal location (docker/nginx.conf) that serves MEDIA_ROOT's files to
# nobody else. Empty (the demo, runserver, tests): Django sends the file itself.
X_ACCEL_MEDIA_PREFIX = env.text("X_ACCEL_MEDIA_PREFIX")
if X_ACCEL_MEDIA_PREFIX and not (X_ACCEL_MEDIA_PREFIX.startswith("/")
                                 and X_ACCEL_MEDIA_PREFIX.endswith("/")):
    raise ImproperlyConfigured("X_ACCEL_MEDIA_PREFIX must start and end with '/', e.g. "
                               "/_protected_media/ (or be empty).")

# Health and metrics (ops/, README "Health and metrics"). /health/ready/ fails when the disk
# holding MEDIA_ROOT has less than HEALTH_MIN_FREE_DISK_MB free; Redis's PING and the workers'
# Celery ping wait at most HEALTH_TIMEOUT_S (so does reading the queue's length for /metrics).
HEALTH_MIN_FREE_DISK_MB = env.number("HEALTH_MIN_FREE_DISK_MB")
HEALTH_TIMEOUT_S = env.number("HEALTH_TIMEOUT_S")
# /metrics (Prometheus) answers only "Authorization: Bearer <METRICS_TOKEN>"; unset: 404.
METRICS_TOKEN = env.text("METRICS_TOKEN")

# E-mail: invitations, password resets and notifications. The demo prints them on the
# console; production sends them through SMTP (EMAIL_HOST ...). Links in e-mails start with
# SITE_URL, the public origin of the site.
EMAIL_BACKEND = env.text(
    "EMAIL_BACKEND", fallback="django.core.mail.backends.console.EmailBackend" if DEMO_MODE
    else "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.text("EMAIL_HOST")
EMAIL_PORT = env.integer("EMAIL_PORT")
EMAIL_HOST_USER = env.text("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env.text("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env.flag("EMAIL_USE_TLS")
EMAIL_USE_SSL = env.flag("EMAIL_USE_SSL")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env.text("DEFAULT_FROM_EMAIL")
SITE_URL = env.text("SITE_URL").rstrip("/")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "trial.api.pagination.BoundedPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "trial.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CXR reader-study trial platform API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema names every endpoint and field: only signed-in people may read it.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Import jobs and drafts share one set of states (queued, running, done, failed).
    "ENUM_NAME_OVERRIDES": {"QueueStatusEnum": "drafting.models.Draft.Status"},
    # Swagger UI and ReDoc from this site's static files (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge image from validator.swagger.io (it would send the schema's address there).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Every operation documents its refusals (400, 403, 404, 409) with their bodies.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "trial.api.schema.document_errors"],
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.flag("SECURE_COOKIES")
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# HTTPS (README "Production deployment"): on by default in production (DEBUG off), off in
# debug. Behind nginx, HTTPS is what X-Forwarded-Proto says (SECURE_PROXY_SSL_HEADER above).
# The test client and pytest's live server speak plain HTTP: no redirect under pytest unless
# SECURE_SSL_REDIRECT is set (tests/test_security_headers.py checks the production defaults
# in a subprocess without pytest's variable).
SECURE_SSL_REDIRECT = env.flag(
    "SECURE_SSL_REDIRECT", fallback=not DEBUG and not os.environ.get("PYTEST_VERSION"))
# The probes and /metrics are called over plain HTTP inside the deployment (a container's
# health check, Prometheus): never redirected.
SECURE_REDIRECT_EXEMPT = [r"^health/(live|ready)/$", r"^metrics$"]
# HSTS is sent on HTTPS responses only. Preloading is a commitment for the whole domain that is
# slow to undo: the operator's decision (off by default; Django's check of it is then silenced).
SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", fallback=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.flag("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env.flag("SECURE_HSTS_PRELOAD")
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"  # no page of the site is ever framed (frame-ancestors 'none' too)

# Content-Security-Policy (django-csp 4): scripts only from this site's own files, never inline
# (JSON data blocks, <script type="application/json">, are not run and need nothing). Inline
# styles are allowed: the self-contained analysis report, ReDoc and Swagger UI inject them, and
# a style cannot run code. data: images: the analysis figures and Swagger UI's icons. No
# reporting endpoint: violations show in the browser's console only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.text("LOG_LEVEL")},
    # Every sign-in is not news; lockouts are (WARNING, and an audit event).
    # pynetdicom and dicomweb-client log requests with their identifiers (accession numbers,
    # UIDs, headers) at INFO and DEBUG: only their warnings.
    "loggers": {"axes": {"level": "WARNING"}, "pynetdicom": {"level": "WARNING"},
                "dicomweb_client": {"level": "WARNING"}},
}
