"""One settings module, driven by environment variables (see the README's configuration table)."""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Production mode turns on secure cookies and HSTS and refuses to start without its own secrets.
PRODUCTION = env.bool("PRODUCTION", default=False)
# Debug pages, and the published development secrets: only for the demo and local development.
DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise environ.ImproperlyConfigured("DEBUG must be off in production mode")

_DEV_SECRET = "dev-only-insecure-secret-key-change-me"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET)
# The development secret is published in this file: anyone could forge sessions and password
# reset tokens with it, so it is accepted only when the demo/debug mode is explicitly on.
if not SECRET_KEY or (SECRET_KEY == _DEV_SECRET and (PRODUCTION or not DEBUG)):
    raise environ.ImproperlyConfigured(
        "SECRET_KEY must be set (DEBUG=true allows the development value for the demo)"
    )
# Fernet keys for secrets kept in the database (crm.secrets), newest first. Required in
# production mode; elsewhere, unset means one derived from SECRET_KEY. Generate one with:
# python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if PRODUCTION and not FIELD_ENCRYPTION_KEYS:
    # A key derived from SECRET_KEY would put the mailbox passwords and the session signing
    # key in one secret: whoever learns one learns both.
    raise environ.ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set in production mode")
for _key in FIELD_ENCRYPTION_KEYS:
    try:
        Fernet(_key)
    except ValueError as _exc:
        raise environ.ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key"
        ) from _exc

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "helpdesk",
    "jobs",
    "crm",
    "donations_sync",
    "tickets",
    "tickets.mail",
    "knowledge",
    "telephony",
    # City escalation, the monthly analysis and the operator's administration read the apps
    # below them and are read by nothing but their own pages.
    "escalation",
    "reshipments",
    "analysis",
    "administration",
    # Demo and operator-scale data (seed_demo, demo_logins, totp_code): above every app, last.
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # No inline script or style anywhere: an injected <script> or onclick= does not run.
    "crm.middleware.ContentSecurityPolicyMiddleware",
    # Static files from the ASGI process itself: no separate web server is needed for the UI.
    "crm.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "crm.middleware.IdleTimeoutMiddleware",
    "crm.middleware.RequireTwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a refused log-in into our lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
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
    }
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
# A persistent (or pooled) connection that died with a database restart is replaced before a
# request uses it, instead of failing that request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if IS_POSTGRES:
    # The web's queries are short index walks and bounded scans: starting parallel workers and
    # JIT-compiling cost more than they save (a 1M-ticket search: 5 ms alone, 20–80 ms with
    # two workers on a busy 2-core host; see benchmarks/lists.py). Batch jobs may set their own.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = env.str(
        "DB_SESSION_OPTIONS", default="-c max_parallel_workers_per_gather=0 -c jit=off"
    )
# Under ASGI every request runs in a fresh thread, so without a pool each one opens a new
# PostgreSQL connection; DB_POOL_MAX_SIZE > 0 keeps a pool of them (psycopg_pool).
DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=0)
if IS_POSTGRES and DB_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool, not Django, keeps connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(4, DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": 10,
        # With CONN_HEALTH_CHECKS (above) Django gives the pool
        # check=ConnectionPool.check_connection: a connection is checked before it is handed
        # out, so after a database restart the dead ones are replaced instead of failing the
        # first requests.
    }

AUTH_USER_MODEL = "crm.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# django-axes refuses log-ins first; ModelBackend then checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "crm.passwords.CharacterClassesValidator"},
]

# Operator staff must pass TOTP; city officials log in with a password (the spec allows
# two-factor *or* IP restriction for administrative screens, and city users have none).
TWO_FACTOR_REQUIRED = env.bool("TWO_FACTOR_REQUIRED", default=True)
OTP_TOTP_ISSUER = "ふるさと納税コールセンター"
SESSION_IDLE_TIMEOUT_MINUTES = env.int("SESSION_IDLE_TIMEOUT_MINUTES", default=30)
# Enrolment links (issued on /staff/ or by manage.py issue_enrolment_link) expire after this.
TWO_FACTOR_ENROLMENT_LINK_HOURS = env.int("TWO_FACTOR_ENROLMENT_LINK_HOURS", default=72)

# --- Log-in throttling (django-axes): after LOGIN_FAILURE_LIMIT failures within
# LOGIN_LOCKOUT_MINUTES of each other, an account, or a client address (whatever usernames it
# tries), is refused for LOGIN_LOCKOUT_MINUTES; an operator admin can unlock it on /staff/.
# The client address is REMOTE_ADDR: behind a proxy, let the ASGI server take it from the
# proxy's header (uvicorn: FORWARDED_ALLOW_IPS; daphne: --proxy-headers), or every client
# would share the proxy's address and one attacker would lock everyone out. ---
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=30)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
# Attempts while locked are refused without extending the lock (nor counted).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe the count: it would also wipe the address's failures on other accounts.
AXES_RESET_ON_SUCCESS = False
AXES_USERNAME_CALLABLE = "crm.lockout.attempted_username"
AXES_CLIENT_IP_CALLABLE = "crm.audit.client_ip"
AXES_LOCKOUT_CALLABLE = "crm.views.login_locked_out"
AXES_DISABLE_ACCESS_LOG = True  # successful log-ins are in crm.AuditLog
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False

LANGUAGE_CODE = "ja"
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
# Serve straight from the app folders too, so tests and a fresh demo need no collectstatic.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "/media-not-served/"
# Hand-over exports (zips of a municipality's data) and deletion certificates: never served
# directly, only through the operator admin's download pages.
HANDOVER_ROOT = env.path("HANDOVER_ROOT", default=BASE_DIR / "var" / "handover")

SITE_ID = 1

# --- Redis: Celery broker, cache, Channels layer. Without it the demo runs in-process. ---
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
# A task's message is acknowledged only once it finished; a worker process killed mid-task
# gives its message back (reject_on_worker_lost) instead of losing it, and a worker host that
# vanished gives it back after the visibility timeout. Every task is idempotent for this.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT,
    # A request that queues work must not hang on an unreachable broker: the job row waits.
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Jobs (jobs.PendingJob): a job not done this long after it was sent is sent again; after
# JOBS_MAX_ATTEMPTS failures it is given up (and shows as such in the admin).
JOBS_VISIBILITY_SECONDS = env.int("JOBS_VISIBILITY_SECONDS", default=300)
JOBS_MAX_ATTEMPTS = env.int("JOBS_MAX_ATTEMPTS", default=10)
JOBS_SWEEP_SECONDS = env.float("JOBS_SWEEP_SECONDS", default=60)
CELERY_BEAT_SCHEDULE: dict = {
    "jobs-sweep": {"task": "jobs.sweep", "schedule": JOBS_SWEEP_SECONDS},
}

# --- The donation & fulfillment core (donations_sync.core_client, donations_sync.feed) ---
# Pulling its change feed is on when CORE_API_URL is set; receiving its pushes (POST /core/feed/)
# is on when CORE_FEED_PUSH is. Production refuses to start with a feed on and its secret unset.
CORE_API_URL = env.str("CORE_API_URL", default="")
CORE_API_TOKEN = env.str("CORE_API_TOKEN", default="")
CORE_API_CONNECT_TIMEOUT = env.float("CORE_API_CONNECT_TIMEOUT", default=5.0)
CORE_API_READ_TIMEOUT = env.float("CORE_API_READ_TIMEOUT", default=30.0)
CORE_FEED_PUSH = env.bool("CORE_FEED_PUSH", default=False)
CORE_FEED_SECRET = env.str("CORE_FEED_SECRET", default="")
# A pushed request whose X-Core-Timestamp is further than this from our clock is refused.
CORE_FEED_REPLAY_WINDOW_SECONDS = env.int("CORE_FEED_REPLAY_WINDOW_SECONDS", default=300)
CORE_FEED_PAGE_SIZE = env.int("CORE_FEED_PAGE_SIZE", default=200)
CORE_FEED_MAX_PAGES_PER_RUN = env.int("CORE_FEED_MAX_PAGES_PER_RUN", default=50)
CORE_FEED_PULL_SECONDS = env.float("CORE_FEED_PULL_SECONDS", default=60)
# After a failed pull the next one waits PULL_SECONDS × 2^(failures−1), at most this long.
CORE_FEED_BACKOFF_MAX_SECONDS = env.int("CORE_FEED_BACKOFF_MAX_SECONDS", default=30 * 60)
if PRODUCTION and CORE_API_URL and not CORE_API_TOKEN:
    raise environ.ImproperlyConfigured("CORE_API_TOKEN must be set when CORE_API_URL is")
if PRODUCTION and CORE_FEED_PUSH and len(CORE_FEED_SECRET) < 32:
    raise environ.ImproperlyConfigured(
        "CORE_FEED_SECRET must be set (32 characters or more) when CORE_FEED_PUSH is on"
    )
# Applied and stale receipts of the feed are kept this long (保留 ones until resolved).
CORE_FEED_RECEIPT_DAYS = env.int("CORE_FEED_RECEIPT_DAYS", default=180)
CELERY_BEAT_SCHEDULE["core-feed-pull"] = {
    "task": "donations_sync.feed_tasks.core_feed_pull",
    "schedule": CORE_FEED_PULL_SECONDS,
}
# The outbox (donations_sync.outbox): decisions POSTed to CORE_API_URL/CORE_OUTBOX_PATH.
CORE_OUTBOX_PATH = env.str("CORE_OUTBOX_PATH", default="decisions")
# After the n-th failed attempt: BASE × 2^(n−1) seconds, at most MAX, half of it random.
CORE_OUTBOX_BACKOFF_BASE_SECONDS = env.float("CORE_OUTBOX_BACKOFF_BASE_SECONDS", default=30)
CORE_OUTBOX_BACKOFF_MAX_SECONDS = env.float("CORE_OUTBOX_BACKOFF_MAX_SECONDS", default=30 * 60)
# 15 attempts span about five hours of outage before a message becomes a dead letter.
CORE_OUTBOX_MAX_ATTEMPTS = env.int("CORE_OUTBOX_MAX_ATTEMPTS", default=15)
# A claim not finished this long after it was taken belongs to a dead worker: due again.
CORE_OUTBOX_LEASE_SECONDS = env.int("CORE_OUTBOX_LEASE_SECONDS", default=120)
CORE_OUTBOX_BATCH = env.int("CORE_OUTBOX_BATCH", default=100)
# POSTs of one batch in flight at once (threads sharing the client's keep-alive connection
# pool; requests keeps up to 10 connections per host, so more than 10 gains nothing).
CORE_OUTBOX_CONCURRENCY = env.int("CORE_OUTBOX_CONCURRENCY", default=8)
CORE_OUTBOX_SWEEP_SECONDS = env.float("CORE_OUTBOX_SWEEP_SECONDS", default=30)
CORE_OUTBOX_SWEEP_MAX_SECONDS = env.float("CORE_OUTBOX_SWEEP_MAX_SECONDS", default=25)
CELERY_BEAT_SCHEDULE["core-outbox-sweep"] = {
    "task": "donations_sync.outbox_sweep",
    "schedule": CORE_OUTBOX_SWEEP_SECONDS,
}
CELERY_BEAT_SCHEDULE["core-feed-receipts-prune"] = {
    "task": "donations_sync.feed_tasks.core_feed_receipts_prune",
    "schedule": 24 * 60 * 60,
}

# --- Security (IPA list: session management, clickjacking, CSRF, cookies) ---
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_AGE = 60 * 60 * 12
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Lists count at most this many matches and then say 「1,000件以上」: an exact COUNT(*) over
# every match of a common word costs more than the page itself.
LIST_COUNT_LIMIT = env.int("LIST_COUNT_LIMIT", default=1000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Lists page by cursor (tickets.api), never by OFFSET with a full COUNT behind every page.
    "DEFAULT_PAGINATION_CLASS": "tickets.api_pagination.NewestIdCursor",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "ふるさと納税コールセンター API",
    "VERSION": "1",
    # Several models have a "status"; name each enum after its model in the schema.
    "ENUM_NAME_OVERRIDES": {
        "InquiryStatusEnum": "tickets.models.Status",
        "DonationStatusEnum": "donations_sync.models.Donation.Status",
        "ShipmentStatusEnum": "donations_sync.models.Shipment.Status",
    },
}

# --- django-helpdesk: a ticket store only; its screens and API are not exposed. ---
HELPDESK_TEAMS_MODE_ENABLED = False
HELPDESK_KB_ENABLED = False
HELPDESK_ENABLE_PER_QUEUE_STAFF_PERMISSION = True
HELPDESK_SHOW_CHANGE_DETAILS = True
HELPDESK_REDIRECT_TO_LOGIN_BY_DEFAULT = True
HELPDESK_ANON_ACCESS_RAISES_404 = True
HELPDESK_ENABLE_BACKLINKS = False

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@callcenter.invalid")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}

# --- Telephony (Twilio). Webhook signatures are checked against TWILIO_PUBLIC_BASE_URL, the
# address Twilio calls (the TLS-terminating proxy's), not the address the app sees. ---
_DEV_TWILIO_TOKEN = "dev-only-twilio-auth-token"  # noqa: S105
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="AC00000000000000000000000000000000")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default=_DEV_TWILIO_TOKEN)
# With the published development token anyone could sign webhooks (fake calls, recordings).
if not TWILIO_AUTH_TOKEN or (TWILIO_AUTH_TOKEN == _DEV_TWILIO_TOKEN and (PRODUCTION or not DEBUG)):
    raise environ.ImproperlyConfigured(
        "TWILIO_AUTH_TOKEN must be set (DEBUG=true allows the development value for the demo)"
    )
TWILIO_PUBLIC_BASE_URL = env.str("TWILIO_PUBLIC_BASE_URL", default="http://localhost:8000")
TWILIO_API_KEY_SID = env.str("TWILIO_API_KEY_SID", default="")
TWILIO_API_KEY_SECRET = env.str("TWILIO_API_KEY_SECRET", default="")
TWILIO_TWIML_APP_SID = env.str("TWILIO_TWIML_APP_SID", default="")
TWILIO_HTTP_CLIENT = env.str("TWILIO_HTTP_CLIENT", default="")  # dotted path of an HttpClient
# Twilio's REST API (recordings are fetched from it); tests point it at a local fake.
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
TELEPHONY_SAY_VOICE = env.str("TELEPHONY_SAY_VOICE", default="Polly.Mizuki")
TELEPHONY_RING_GROUP_SIZE = env.int("TELEPHONY_RING_GROUP_SIZE", default=5)
TELEPHONY_VOICEMAIL_MAX_SECONDS = env.int("TELEPHONY_VOICEMAIL_MAX_SECONDS", default=120)
# An agent whose last websocket closed is set offline only after this many seconds, so a page
# reload does not drop them from the ring group.
TELEPHONY_DISCONNECT_GRACE_SECONDS = env.float("TELEPHONY_DISCONNECT_GRACE_SECONDS", default=10.0)
# How long a process trusts its cached line rules before checking the shared version again.
TELEPHONY_LINE_RULES_RECHECK_SECONDS = env.float(
    "TELEPHONY_LINE_RULES_RECHECK_SECONDS", default=1.0
)
# Where the page loads the Twilio Voice JS SDK (twilio.min.js of @twilio/voice-sdk) for the
# browser softphone; with TWILIO_TWIML_APP_SID unset or this empty, agents answer by phone.
TELEPHONY_VOICE_SDK_URL = env.str("TELEPHONY_VOICE_SDK_URL", default="")
# The wallboard highlights an agent who has been in 後処理 (wrap-up) longer than this.
TELEPHONY_WRAP_UP_ALERT_SECONDS = env.int("TELEPHONY_WRAP_UP_ALERT_SECONDS", default=180)
# Presence: each open agent socket beats every TELEPHONY_HEARTBEAT_SECONDS; an agent none of whose
# beats is younger than TELEPHONY_HEARTBEAT_TTL_SECONDS is logged off by the presence sweep.
TELEPHONY_HEARTBEAT_SECONDS = env.float("TELEPHONY_HEARTBEAT_SECONDS", default=10.0)
TELEPHONY_HEARTBEAT_TTL_SECONDS = env.float("TELEPHONY_HEARTBEAT_TTL_SECONDS", default=30.0)
CELERY_BEAT_SCHEDULE["telephony-presence-sweep"] = {
    "task": "telephony.tasks.presence_sweep",
    "schedule": TELEPHONY_HEARTBEAT_SECONDS,
}
# The reconciler (telephony.tasks.calls_reconcile): a call with no webhook for this long is
# checked with Twilio's REST API (and ended if Twilio says it is over); an agent ringing this long
# is freed. Without REST credentials a call is ended only past TELEPHONY_CALL_MAX_SECONDS
# (Twilio's own limit on a call's length is 4 hours).
TELEPHONY_RECONCILE_AFTER_SECONDS = env.int("TELEPHONY_RECONCILE_AFTER_SECONDS", default=120)
TELEPHONY_CALL_MAX_SECONDS = env.int("TELEPHONY_CALL_MAX_SECONDS", default=4 * 60 * 60)
CELERY_BEAT_SCHEDULE["calls-reconcile"] = {
    "task": "telephony.tasks.calls_reconcile",
    "schedule": env.float("TELEPHONY_RECONCILE_SECONDS", default=60),
}

# --- Mail intake and outbound mail (tickets.mail) ---
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
MAIL_POLL_SECONDS = env.int("MAIL_POLL_SECONDS", default=60)
MAIL_FETCH_BATCH = env.int("MAIL_FETCH_BATCH", default=200)  # messages per poll per mailbox
# Fetched messages are stored and processed in chunks of this many (and at most this many bytes).
MAIL_INGEST_CHUNK = env.int("MAIL_INGEST_CHUNK", default=100)
MAIL_INGEST_CHUNK_BYTES = env.int("MAIL_INGEST_CHUNK_BYTES", default=32 * 1024 * 1024)
MAIL_FETCH_TIMEOUT = env.int("MAIL_FETCH_TIMEOUT", default=30)  # seconds, IMAP/POP3 sockets
MAIL_SMTP_TIMEOUT = env.int("MAIL_SMTP_TIMEOUT", default=30)
MAIL_SEND_MAX_ATTEMPTS = env.int("MAIL_SEND_MAX_ATTEMPTS", default=5)
# How long a worker holds a mail it is sending. One send is several SMTP round trips, each
# bounded by MAIL_SMTP_TIMEOUT; a mail still "sending" past this is marked 送信結果不明.
MAIL_SEND_LEASE_SECONDS = env.int("MAIL_SEND_LEASE_SECONDS", default=10 * MAIL_SMTP_TIMEOUT)
if MAIL_SEND_LEASE_SECONDS <= MAIL_SMTP_TIMEOUT:
    raise environ.ImproperlyConfigured(
        "MAIL_SEND_LEASE_SECONDS must be longer than MAIL_SMTP_TIMEOUT"
    )
# A mail still pending this long had its task lost (broker down): the sweep dispatches it.
MAIL_PENDING_DISPATCH_SECONDS = env.int("MAIL_PENDING_DISPATCH_SECONDS", default=120)
MAIL_MAX_ATTACHMENT_BYTES = env.int("MAIL_MAX_ATTACHMENT_BYTES", default=10 * 1024 * 1024)
MAIL_RATE_LIMIT_PER_HOUR = env.int("MAIL_RATE_LIMIT_PER_HOUR", default=20)  # per sender
# Domain of our outbound Message-IDs; empty = the sending address's domain.
MAIL_MESSAGE_ID_DOMAIN = env.str("MAIL_MESSAGE_ID_DOMAIN", default="")
CELERY_BEAT_SCHEDULE.update(
    {
        "mail-poll": {"task": "tickets.mail.tasks.mail_poll_all", "schedule": MAIL_POLL_SECONDS},
        "mail-retry": {"task": "tickets.mail.tasks.mail_retry_due", "schedule": 60},
        "mail-stranded": {"task": "tickets.mail.tasks.mail_process_stranded", "schedule": 300},
    }
)

# --- CSV imports (donations_sync) ---
# Queued imports no worker took, and imports whose worker died (heartbeat stopped), are sent
# again by this sweep; see donations_sync.services.
CELERY_BEAT_SCHEDULE["import-runs-sweep"] = {
    "task": "donations_sync.import_runs_sweep",
    "schedule": env.float("IMPORT_SWEEP_SECONDS", default=60),
}
# --- City escalation (escalation/) ---
# Links in notifications point here (the address city officials log in at).
ESCALATION_SITE_URL = env.str("ESCALATION_SITE_URL", default="http://localhost:8000")
ESCALATION_MAIL_FROM = env.str("ESCALATION_MAIL_FROM", default="")  # empty: DEFAULT_FROM_EMAIL
ESCALATION_MAIL_FROM_NAME = env.str(
    "ESCALATION_MAIL_FROM_NAME", default="ふるさと納税コールセンター"
)
# "iso-2022-jp" (what many city mail systems expect) or "utf-8".
ESCALATION_MAIL_CHARSET = env.str("ESCALATION_MAIL_CHARSET", default="iso-2022-jp")
# Twilio numbers that send escalation SMS and place the automated acknowledgement calls.
ESCALATION_SMS_FROM = env.str("ESCALATION_SMS_FROM", default="")
ESCALATION_VOICE_FROM = env.str("ESCALATION_VOICE_FROM", default="")
# The operator's information-security officer(s), told of every personal-data incident.
ESCALATION_SECURITY_OFFICER_EMAILS = env.list("ESCALATION_SECURITY_OFFICER_EMAILS", default=[])
ESCALATION_PERSONAL_DATA_MINUTES = env.int("ESCALATION_PERSONAL_DATA_MINUTES", default=60)
# Manual reports: minutes (in the city's business hours) before the next contact is tried.
ESCALATION_NEXT_CONTACT_MINUTES = env.int("ESCALATION_NEXT_CONTACT_MINUTES", default=30)
# Reminders cycle through the contacts until acknowledged, at most this many steps.
ESCALATION_MAX_STEPS = env.int("ESCALATION_MAX_STEPS", default=12)
ESCALATION_SEND_MAX_TRIES = env.int("ESCALATION_SEND_MAX_TRIES", default=5)
ESCALATION_RETRY_SECONDS = env.int("ESCALATION_RETRY_SECONDS", default=60)
ESCALATION_SEND_LEASE_SECONDS = env.int("ESCALATION_SEND_LEASE_SECONDS", default=300)
# A notification still queued this long after it was written lost its task: the beat resends it.
ESCALATION_DISPATCH_GRACE_SECONDS = env.int("ESCALATION_DISPATCH_GRACE_SECONDS", default=60)
CELERY_BEAT_SCHEDULE.update(
    {
        "escalations-tick": {
            "task": "escalation.tasks.escalations_tick",
            "schedule": env.float("ESCALATION_TICK_SECONDS", default=30),
        },
        "escalation-clusters": {
            "task": "escalation.tasks.clusters_detect",
            "schedule": env.float("ESCALATION_CLUSTER_SECONDS", default=900),
        },
    }
)
# --- Monthly analysis and the city's monthly report (analysis) ---
# Links in the report mails (to the city, and to supervisors when a report is late).
ANALYSIS_PUBLIC_BASE_URL = env.str("ANALYSIS_PUBLIC_BASE_URL", default=TWILIO_PUBLIC_BASE_URL)
CELERY_BEAT_SCHEDULE.update(
    {
        # On the 1st (Asia/Tokyo, CELERY_TIMEZONE) every municipality's previous month.
        "analysis-generate-previous-month": {
            "task": "analysis.generate_previous_month",
            "schedule": crontab(minute=30, hour=3, day_of_month=1),
        },
        # Daily; from the 16th a report still in draft alerts its supervisors (once).
        "analysis-alert-overdue": {
            "task": "analysis.alert_overdue",
            "schedule": crontab(minute=0, hour=9),
        },
    }
)
# --- Hand-over and retention (administration.handover) ---
# A hand-over run whose worker has given no sign of life this long is sent again (it resumes).
HANDOVER_STALE_SECONDS = env.int("HANDOVER_STALE_SECONDS", default=600)
# The deletion's batch (rows per transaction) and an optional pause between batches, to leave
# more room to a busy database.
HANDOVER_DELETE_BATCH = env.int("HANDOVER_DELETE_BATCH", default=5000)
HANDOVER_DELETE_PAUSE_SECONDS = env.float("HANDOVER_DELETE_PAUSE_SECONDS", default=0.0)
CELERY_BEAT_SCHEDULE.update(
    {
        "handover-sweep": {"task": "administration.handover.tasks.handover_sweep", "schedule": 300},
        "retention-purge": {
            "task": "administration.handover.tasks.retention_purge_all",
            "schedule": env.float("RETENTION_PURGE_SECONDS", default=24 * 60 * 60),
        },
    }
)
