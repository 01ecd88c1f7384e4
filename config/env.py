"""Every environment variable the platform reads, in one list: the settings, gunicorn and the
report metrics read them through this module (a name not in the list is an error), and the
documentation's settings page is generated from it (docs/hooks.py), so the two cannot drift.

Yes/no variables accept ``1``, ``true``, ``yes``, ``on`` (anything else is no); lists are
comma-separated; a variable set but empty counts as not set (the default applies). A variable
whose default is worked out by the code (``default=None``: from another setting, or from
``DEBUG``) says so in ``shown``, and the reader passes the fallback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TRUE = {"1", "true", "yes", "on"}
# The settings page's sections, in this order.
CORE = "Core"
WORKERS = "Database, cache and workers"
MAIL = "E-mail, notifications and the dashboard"
DICOM = "DICOM files, the listener and PACS"
SECURITY = "Sign-in and security"
READING = "Reading"
METRICS = "Report metrics"
OPERATIONS = "Operations: health, metrics, gunicorn"


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # flag, text, integer, number, list, path
    default: str | None  # the text used when unset; None: worked out by the code (``shown``)
    group: str
    meaning: str
    shown: str = ""  # the default as documented when it is not a literal

    @property
    def documented_default(self) -> str:
        """The default as the settings page shows it."""
        if self.shown:
            return self.shown
        if self.kind == "flag":
            return "on" if self.default in TRUE else "off"
        return f"`{self.default}`" if self.default else "empty"


VARIABLES: tuple[Variable, ...] = (
    # --- Core ---
    Variable("DEMO_MODE", "flag", "0", CORE,
        "Laptop demo: turns `DEBUG` on by default and allows running without `SECRET_KEY`. "
        "Never in production."),
    Variable("DEBUG", "flag", None, CORE,
        "Django debug mode (error pages, no secure-cookie settings). Never in production.",
        shown="value of `DEMO_MODE`"),
    Variable("SECRET_KEY", "text", "", CORE,
        "Django's secret key. **Required** unless `DEMO_MODE` or `DEBUG` is on (or under "
        "pytest); without it the settings refuse to load."),
    Variable("DATA_DIR", "path", None, CORE,
        "Where the embedded defaults live: the SQLite database, `media/`, `static/`, `spool/` "
        "(the DICOM listener's).",
        shown="`<repo>/data`"),
    Variable("MEDIA_ROOT", "path", None, CORE,
        "Uploaded and imported files (the de-identified DICOM images). Must be shared by the "
        "web server and the workers.",
        shown="`$DATA_DIR/media`"),
    Variable("STATIC_ROOT", "path", None, CORE,
        "Where `collectstatic` puts static files for the web server to serve.",
        shown="`$DATA_DIR/static`"),
    Variable("ALLOWED_HOSTS", "list", "localhost,127.0.0.1,[::1]", CORE,
        "Host names the site answers to."),
    Variable("CSRF_TRUSTED_ORIGINS", "list", "", CORE,
        "Origins allowed to post forms when they differ from the host seen by Django, e.g. "
        "`https://trial.example.org` behind a TLS proxy."),
    Variable("SITE_URL", "text", "http://127.0.0.1:8000", CORE,
        "The site's public origin, e.g. `https://trial.example.org`: links in e-mails "
        "(invitations, password resets, notifications) start with it."),
    Variable("TIME_ZONE", "text", "UTC", CORE,
        "Time zone for display; times are stored in UTC."),
    Variable("LOG_LEVEL", "text", "INFO", CORE,
        "Level of the root logger (console)."),
    # --- Database, cache and workers ---
    Variable("DATABASE_URL", "text", None, WORKERS,
        "The database, e.g. `postgresql://user:password@host:5432/cxr`. PostgreSQL in "
        "production (the audit-log triggers exist only there).",
        shown="`sqlite:///$DATA_DIR/db.sqlite3`"),
    Variable("DATABASE_CONN_MAX_AGE", "integer", "60", WORKERS,
        "Seconds a database connection is kept open for reuse by the web server and by each "
        "worker process (`0`: one per request or task). A kept connection is checked before "
        "reuse."),
    Variable("REDIS_URL", "text", "", WORKERS,
        "Redis for Celery, e.g. `redis://redis:6379/0`; used as broker and result backend, "
        "and as Django's cache, from which sessions are read (they are kept in the database "
        "too: a flushed Redis signs nobody out, an unreachable one costs each request at most "
        "a 1 s timeout and the database answers). Empty: tasks run in-process, synchronously, "
        "and sessions come from the database (the demo default)."),
    Variable("CELERY_VISIBILITY_TIMEOUT", "integer", "3600", WORKERS,
        "Seconds after which Redis delivers again a task that a worker took but never "
        "acknowledged (tasks are acknowledged when they end). Keep it above the longest "
        "draft: model timeout × max attempts, plus the backoff. A draft left running by a "
        "worker that died does not wait for this: the takeover check sends it again (see "
        "`DRAFT_TAKEOVER_SECONDS`). Workers look for such tasks every `min(10, "
        "CELERY_VISIBILITY_TIMEOUT / 2)` seconds."),
    Variable("DRAFT_LEASE_MARGIN_S", "number", "30", WORKERS,
        "A running draft's lease ends this many seconds after its model call's timeout "
        "(counted from when the call started; while a run waits up to 5 minutes for one of "
        "the endpoint's slots, the lease covers that wait too). Once the lease has run out, "
        "the draft is taken over within `DRAFT_TAKEOVER_SECONDS`."),
    Variable("DRAFT_TAKEOVER_SECONDS", "number", "15", WORKERS,
        "How often `celery beat` runs the takeover check: running drafts whose lease ran out "
        "(their worker died) are put back in the queue and sent again; one that has already "
        "had its endpoint's max attempts fails instead."),
    Variable("DRAFT_SWEEP_SECONDS", "number", "300", WORKERS,
        "How often `celery beat` runs the sweep of AI drafts: drafts never sent, not picked "
        "up within 15 minutes, enrolled cases without a draft of the active endpoint, and "
        "(like the takeover check) running drafts whose lease ran out. The same period "
        "drives the sweeps of final reports due to sites' PACS and of the LLM labeller's and "
        "judge's jobs never sent or lost."),
    Variable("DRAFT_SEND_TIMEOUT_S", "number", "1", WORKERS,
        "Longest wait for Redis when a draft's task is sent (enrolment, \"Queue missing "
        "drafts\", retry, the sweep). A broker that refuses connections fails at once; one "
        "that does not answer, after this. The draft then stays queued and the sweep sends "
        "it."),
    Variable("SECRET_ENV_NAMES", "list", "MODEL_API_KEY", WORKERS,
        "Environment variables a model endpoint, labeller, judge or PACS node may name for "
        "its key, besides any starting with `CXR_`. The platform's own secrets (`SECRET_KEY`, "
        "`DATABASE_URL`, `PACS_UID_KEY`, `EMAIL_HOST_PASSWORD` ...) are refused whatever this "
        "says."),
    # --- E-mail, notifications and the dashboard ---
    Variable("EMAIL_BACKEND", "text", None, MAIL,
        "Django's e-mail backend; the demo prints e-mails on the console.",
        shown="console in the demo, else SMTP"),
    Variable("EMAIL_HOST", "text", "localhost", MAIL,
        "The SMTP server for invitations, password resets and notifications."),
    Variable("EMAIL_PORT", "integer", "25", MAIL,
        "The SMTP server's port (25; 587 with `EMAIL_USE_TLS`, 465 with `EMAIL_USE_SSL`)."),
    Variable("EMAIL_HOST_USER", "text", "", MAIL,
        "SMTP credentials, when the server asks for them."),
    Variable("EMAIL_HOST_PASSWORD", "text", "", MAIL,
        "SMTP credentials, when the server asks for them."),
    Variable("EMAIL_USE_TLS", "flag", "0", MAIL,
        "STARTTLS after connecting (usually port 587). Not together with `EMAIL_USE_SSL`."),
    Variable("EMAIL_USE_SSL", "flag", "0", MAIL,
        "Implicit TLS from the start (usually port 465). Not together with `EMAIL_USE_TLS`."),
    Variable("DEFAULT_FROM_EMAIL", "text", "cxr-trials@localhost", MAIL,
        "The sender of the platform's e-mails."),
    Variable("NOTIFY_SECONDS", "number", "3600", MAIL,
        "How often the beat runs `send_notifications` (each person still gets at most one "
        "e-mail per trial interval, 24 hours by default)."),
    Variable("OVERDUE_READING_HOURS", "number", "24", MAIL,
        "A reading open longer than this is overdue (dashboard, coordinators' e-mails)."),
    Variable("OVERDUE_REVIEW_DAYS", "number", "3", MAIL,
        "A case ready for a senior longer than this is overdue (dashboard, coordinators' "
        "e-mails)."),
    Variable("MONITOR_POLL_SECONDS", "number", "15", MAIL,
        "How often the trial dashboard (`/monitor/<trial>/`) refreshes its counts."),
    # --- DICOM files, the listener and PACS ---
    Variable("DICOM_MAX_FILE_MB", "integer", "200", DICOM,
        "Largest accepted DICOM file, in MB."),
    Variable("DICOM_MAX_PIXELS", "integer", "60000000", DICOM,
        "Largest image accepted: Rows × Columns × frames × samples, read from the DICOM "
        "header before anything is inflated or decoded. Decoding may use at most this many "
        "16-bit pixels' worth of memory (120 MB by default)."),
    Variable("DICOM_ZIP_MAX_MEMBERS", "integer", "10000", DICOM,
        "Most files in one uploaded or imported zip."),
    Variable("DICOM_ZIP_MAX_TOTAL_MB", "integer", "20480", DICOM,
        "Most MB the files of one zip may expand to."),
    Variable("DICOM_ZIP_MAX_RATIO", "integer", "100", DICOM,
        "Most a zip member over 1 MB, or the zip as a whole, may expand (uncompressed ÷ "
        "compressed)."),
    Variable("DICOM_LISTENER_AE_TITLE", "text", "CXRTRIALS", DICOM,
        "The DICOM listener's AE title (senders call it)."),
    Variable("DICOM_LISTENER_PORT", "integer", "11112", DICOM,
        "The DICOM listener's port."),
    Variable("DICOM_SPOOL_DIR", "path", None, DICOM,
        "Where received instances wait until their study is imported; must be on the "
        "listener's machine (a volume in the compose stack).",
        shown="`$DATA_DIR/spool`"),
    Variable("DICOM_STUDY_QUIET_SECONDS", "number", "30", DICOM,
        "A study received by the listener is imported once no instance of it has arrived for "
        "this long."),
    Variable("DICOM_CALLING_AE_TITLE", "text", "CXRTRIALS", DICOM,
        "The platform's AE title when it calls a site's PACS (query and retrieve, reports "
        "sent back)."),
    Variable("PACS_UID_KEY", "text", "", DICOM,
        "A Fernet key (`python -c \"from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())\"`) encrypting the original study identifiers a "
        "site allows the platform to keep. Empty: none are kept."),
    Variable("PACS_DELIVERY_MAX_ATTEMPTS", "integer", "5", DICOM,
        "Tries of a final report's delivery to a site's PACS before it fails (then retried "
        "from the dashboard)."),
    Variable("PACS_DELIVERY_BACKOFF_S", "number", "30", DICOM,
        "First retry delay of a delivery; doubled each attempt (with jitter)."),
    # --- Sign-in and security ---
    Variable("AXES_FAILURE_LIMIT", "integer", "5", SECURITY,
        "Wrong passwords in a row after which an account, and an address, is locked (site and "
        "admin sign-in)."),
    Variable("AXES_COOLOFF_MINUTES", "number", "15", SECURITY,
        "How long a lockout lasts; a coordinator (admin, *Memberships*, \"Unlock sign-in\") or "
        "a superuser lifts it at once (audited)."),
    Variable("AXES_PROXY_COUNT", "integer", "0", SECURITY,
        "Reverse proxies in front of the web server (`1` behind the compose stack's nginx): "
        "the client's address for sign-in lockouts is then the N-th address from the right of "
        "`X-Forwarded-For` (what the proxies appended; the client can forge what is further "
        "left), so a lockout by address hits the client, not the proxy. `0`: the connection's "
        "address."),
    Variable("TWO_FACTOR_FAILURE_LIMIT", "integer", "5", SECURITY,
        "Wrong two-factor codes in a row after which codes are refused for a while."),
    Variable("TWO_FACTOR_LOCK_MINUTES", "number", "15", SECURITY,
        "How long that lasts, counted from the last wrong code. A lost phone: a superuser "
        "resets the person's two-factor sign-in."),
    Variable("TWO_FACTOR_ISSUER", "text", "CXR reader trials", SECURITY,
        "The name authenticator apps show for this site (tell staging and production apart)."),
    Variable("SESSION_IDLE_MINUTES", "number", "30", SECURITY,
        "Signed out after this many minutes without activity (`0`: never). A page's own "
        "background requests (the editor's heartbeat, progress polling) do not count. A "
        "reader's unsaved text stays in the browser and is restored after signing in again."),
    Variable("SECURE_SSL_REDIRECT", "flag", None, SECURITY,
        "Redirect plain-HTTP requests to `https://`. Behind nginx, HTTPS is whatever "
        "`X-Forwarded-Proto` says. Turn off only for a plain-HTTP test without TLS.",
        shown="on in production (`DEBUG` off), off in debug"),
    Variable("SECURE_HSTS_SECONDS", "integer", None, SECURITY,
        "HSTS max-age; sent on HTTPS responses only. `0` turns it off.",
        shown="`31536000` in production, `0` in debug"),
    Variable("SECURE_HSTS_INCLUDE_SUBDOMAINS", "flag", "1", SECURITY,
        "Adds `includeSubDomains` to HSTS."),
    Variable("SECURE_HSTS_PRELOAD", "flag", "0", SECURITY,
        "Adds `preload` to HSTS. Opt in only to submit the domain to the browsers' preload "
        "list; that is hard to undo."),
    Variable("SECURE_COOKIES", "flag", "1", SECURITY,
        "With `DEBUG` off: session and CSRF cookies are sent over HTTPS only. Turn off only "
        "for a plain-HTTP test deployment. Ignored when `DEBUG` is on."),
    # --- Reading ---
    Variable("READING_MIN_SECONDS", "number", "10", READING,
        "A reading submitted in less than this many seconds (reading time) is flagged "
        "`short_reading` for the coordinator (*Readings* admin). Never blocks the submission, "
        "never shown to the reader."),
    # --- Report metrics ---
    Variable("METRICS_BERTSCORE_MODEL", "text", "", METRICS,
        "A local Hugging Face model folder (config, weights, tokenizer) for BERTScore, "
        "computed with the `bert-score` package on the CPU "
        "(`pip install '.[model-metrics]'`). Never downloaded by the platform; while unset, "
        "the metrics say \"not computed\" for BERTScore."),
    Variable("METRICS_BERTSCORE_LAYER", "text", "", METRICS,
        "The layer whose embeddings BERTScore compares.",
        shown="the model's last layer"),
    Variable("METRICS_RADGRAPH_MODEL", "text", "", METRICS,
        "Reserved for RadGraph F1, CheXbert and GREEN weights. Their packages load fixed "
        "Hugging Face repositories, which the platform does not run yet: the metrics say \"not "
        "computed\" with the reason."),
    Variable("METRICS_CHEXBERT_MODEL", "text", "", METRICS,
        "Reserved for RadGraph F1, CheXbert and GREEN weights. Their packages load fixed "
        "Hugging Face repositories, which the platform does not run yet: the metrics say \"not "
        "computed\" with the reason."),
    Variable("METRICS_GREEN_MODEL", "text", "", METRICS,
        "Reserved for RadGraph F1, CheXbert and GREEN weights. Their packages load fixed "
        "Hugging Face repositories, which the platform does not run yet: the metrics say \"not "
        "computed\" with the reason."),
    # --- Operations: health, metrics, gunicorn ---
    Variable("HEALTH_MIN_FREE_DISK_MB", "number", "1024", OPERATIONS,
        "`/health/ready/` fails when the disk holding `MEDIA_ROOT` has less free space than "
        "this many MB. See the monitoring page (health and metrics)."),
    Variable("HEALTH_TIMEOUT_S", "number", "2", OPERATIONS,
        "Longest wait of `/health/ready/` for Redis's `PING` and for a Celery worker to "
        "answer a ping (and of `/metrics` for the queue's length in Redis)."),
    Variable("METRICS_TOKEN", "text", "", OPERATIONS,
        "The token Prometheus must send to read `/metrics` (`Authorization: Bearer "
        "<METRICS_TOKEN>`). Empty: `/metrics` answers 404. A secret: generate it like "
        "`SECRET_KEY`."),
    Variable("X_ACCEL_MEDIA_PREFIX", "text", "", OPERATIONS,
        "Behind nginx: after its access check, Django hands the viewer's pixel and preview "
        "files to nginx (`X-Accel-Redirect: <prefix><path under MEDIA_ROOT>`), an `internal` "
        "location that serves `MEDIA_ROOT` to nobody else (`/_protected_media/` in the "
        "compose stack and `docker/nginx.conf`). Must start and end with `/`. Empty: Django "
        "sends the files itself (the demo, tests, any server without such a location)."),
    Variable("WEB_CONCURRENCY", "integer", None, OPERATIONS,
        "gunicorn processes of the web server (`config/gunicorn.py`; the compose file sets "
        "`4`).",
        shown="`min(4, 2 × cores + 1)`"),
    Variable("GUNICORN_THREADS", "integer", "4", OPERATIONS,
        "Threads per gunicorn process (`gthread` workers): requests served at once = "
        "processes × threads, each with its own database connection (keep the total of all "
        "web containers under PostgreSQL's `max_connections`, 100 by default)."),
    Variable("GUNICORN_TIMEOUT", "integer", "120", OPERATIONS,
        "Seconds a request may take before gunicorn restarts its process (large uploads and "
        "exports stay under it)."),
    Variable("GUNICORN_BIND", "text", "0.0.0.0:8000", OPERATIONS,
        "Address and port gunicorn listens on."),
)
BY_NAME = {variable.name: variable for variable in VARIABLES}


def _raw(name: str, fallback: object) -> str | None:
    """The variable's text, or its default; ``fallback`` only for a worked-out default."""
    variable = BY_NAME[name]  # KeyError: read a variable that is not in the list
    if (fallback is None) != (variable.default is not None):
        raise TypeError(f"{name}: a fallback is given exactly when the default is worked out "
                        "by the code (default=None in config/env.py)")
    value = os.environ.get(name)
    if value is not None and value.strip():
        return value
    return variable.default  # unset or empty: compose passes ``${NAME:-}`` for "not set"


def text(name: str, fallback: str | None = None) -> str:
    value = _raw(name, fallback)
    return fallback if value is None else value


def integer(name: str, fallback: int | None = None) -> int:
    value = _raw(name, fallback)
    return fallback if value is None else int(value)


def number(name: str, fallback: float | None = None) -> float:
    value = _raw(name, fallback)
    return fallback if value is None else float(value)


def flag(name: str, fallback: bool | None = None) -> bool:
    """Yes or no."""
    value = _raw(name, fallback)
    return fallback if value is None else value.strip().lower() in TRUE


def items(name: str) -> list[str]:
    """A comma-separated list, without empty items."""
    return [item.strip() for item in (_raw(name, None) or "").split(",") if item.strip()]


def path(name: str, fallback: Path | None = None) -> Path:
    value = _raw(name, fallback)
    return fallback if value is None else Path(value)
