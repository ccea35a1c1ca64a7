"""Base settings: everything comes from the environment, with safe local defaults.

Local default: SQLite under ``var/``, media under ``var/media``, Redis broker at 127.0.0.1:6379.
Set ``DATABASE_URL`` for PostgreSQL, ``REDIS_URL`` / ``CELERY_BROKER_URL`` for the broker and
``AWS_STORAGE_BUCKET_NAME`` (+ ``AWS_S3_ENDPOINT_URL`` …) for S3-compatible media storage.
``config.settings.production`` tightens this for deployment.
"""

from __future__ import annotations

import os
import secrets
import shutil
import warnings
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Writable state of a local install (SQLite file, media, dev secret key); git-ignored.
VAR_DIR = Path(os.environ.get("GALLERY_VAR_DIR", BASE_DIR / "var")).resolve()


def _dev_secret_key() -> str:
    """A random key kept in var/ so local sessions survive restarts (never used in production)."""
    path = VAR_DIR / ".secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        path.write_text(key)
        path.chmod(0o600)
        return key


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _dev_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "gallery.apps.GalleryConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # 413 from Content-Length before anything reads the body (GALLERY_MAX_REQUEST_BYTES)
    "gallery.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A database outage answers 503 (retry later) instead of 500.
    "gallery.middleware.DatabaseUnavailableMiddleware",
]

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

# --- database ---------------------------------------------------------------------------------
_default_sqlite = VAR_DIR / "db.sqlite3"
if not os.environ.get("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{_default_sqlite}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share one SQLite file on a single machine: wait for a lock instead of
    # failing at once, and take the write lock at BEGIN (a deferred transaction that upgrades from
    # read to write cannot wait: it fails with "database is locked" whatever the timeout).
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "gallery:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- static + media storage -------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
# Local runs serve static files straight from the finders (no collectstatic needed), so a missing
# STATIC_ROOT is expected there.
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at", module="whitenoise.base")
WHITENOISE_AUTOREFRESH = DEBUG

MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Media is never served by URL from the storage root: gallery views check access and stream
# files with the right Content-Type (see gallery/storage.py). MEDIA_URL is only a namespace.
MEDIA_URL = "/media/"

AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
if AWS_STORAGE_BUCKET_NAME:
    # S3-compatible storage (AWS, MinIO, Ceph …) through django-storages. Credentials come from the
    # usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables (read by boto3).
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            "location": os.environ.get("AWS_LOCATION", "gallery"),
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 600),
            "file_overwrite": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "allow_overwrite": True},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- uploads (enforced by Django, not only by the form) ---------------------------------------
GALLERY_MAX_UPLOAD_BYTES = env_int("GALLERY_MAX_UPLOAD_BYTES", 30 * 1024 * 1024)
GALLERY_MAX_PIXELS = env_int("GALLERY_MAX_PIXELS", 40_000_000)
GALLERY_MIN_SIDE = env_int("GALLERY_MIN_SIDE", 16)
GALLERY_MAX_FILES_PER_REQUEST = env_int("GALLERY_MAX_FILES_PER_REQUEST", 50)
# The whole request body (a form post of many files); 0 = no cap. The upload page sends one file per request.
GALLERY_MAX_REQUEST_BYTES = env_int("GALLERY_MAX_REQUEST_BYTES", 256 * 1024 * 1024)
FILE_UPLOAD_HANDLERS = [
    "gallery.uploadhandlers.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
DATA_UPLOAD_MAX_NUMBER_FILES = GALLERY_MAX_FILES_PER_REQUEST
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024  # non-file form fields only

# --- gallery behaviour ------------------------------------------------------------------------
GALLERY_ENCODE_EFFORT = os.environ.get("GALLERY_ENCODE_EFFORT", "default")
GALLERY_CODEC_MODEL = os.environ.get("GALLERY_CODEC_MODEL", "taesd")
# The size presets (tiny/small/standard) as quality targets: "faithful" = keep the block floor and
# every face. The preset's bytes are the nominal budget; a photo that misses the target there may
# grow up to GALLERY_PRESET_TARGET_HEADROOM × those bytes (codec base_bytes/max_bytes; target_met says
# whether it was reached; the photo page and upload row show a badge when not). Empty = the best
# file at the preset's bytes, no growth. An explicit byte budget is never a target.
GALLERY_PRESET_TARGET = os.environ.get("GALLERY_PRESET_TARGET", "faithful")
GALLERY_PRESET_TARGET_HEADROOM = env_float("GALLERY_PRESET_TARGET_HEADROOM", 2.0)
# Text check (issue 12): the encoder OCRs the photo's text lines (Tesseract, in the background during
# the encoder pass) and protects those that would read differently; a file whose text still reads
# differently gets a "Text may have changed" badge. Default: on when the tesseract binary is installed
# (Debian tesseract-ocr + tesseract-ocr-eng; $CODEC_TESSERACT names another one), off otherwise — the
# system check gallery.W021/W022 says so.
GALLERY_CHECK_TEXT = env_bool(
    "GALLERY_CHECK_TEXT", shutil.which(os.environ.get("CODEC_TESSERACT") or "tesseract") is not None
)
# Second look for small faces (issue 12): after READY, the worker probes a photo over 0.25 MP (where the
# encoder's own probe is too slow for the critical path) for faces below the encoder's detection size
# (20 px up to 2 MP, 40 px above; 0.6 s for 768×512, 1.3 s for 1 MP, 4.3 s for 12 MP on 2 cores) and
# codes it again with the probe on when one of them was redrawn (gallery/worker/pipeline.second_look).
GALLERY_SMALL_FACE_AUDIT = env_bool("GALLERY_SMALL_FACE_AUDIT", True)
GALLERY_COMPARISON_FORMATS = env_list("GALLERY_COMPARISON_FORMATS", ["jpeg", "webp", "avif"])
# Lowest quality a comparison may use before it is downscaled to fit; empty = the format's minimum
# (JPEG quality 1), i.e. downscale only when even that is over the latent's size.
_min_q = env_int("GALLERY_COMPARISON_MIN_QUALITY", -1)
GALLERY_COMPARISON_MIN_QUALITY = None if _min_q < 0 else _min_q
GALLERY_PAGE_SIZE = env_int("GALLERY_PAGE_SIZE", 24)
# "optimistic": render previews right after the encode; "just_in_time": on the first request.
GALLERY_PREVIEW_STRATEGY = os.environ.get("GALLERY_PREVIEW_STRATEGY", "optimistic")
GALLERY_PREVIEW_FORMAT = os.environ.get("GALLERY_PREVIEW_FORMAT", "WEBP")
GALLERY_TASK_MAX_RETRIES = env_int("GALLERY_TASK_MAX_RETRIES", 5)
# Warm the model when a worker process starts (the registry keeps it loaded afterwards).
GALLERY_WARM_MODEL = env_bool("GALLERY_WARM_MODEL", True)
GALLERY_TORCH_THREADS = env_int("GALLERY_TORCH_THREADS", 2)
# Encode attempts (retries and deliveries after a killed worker) before a photo is marked failed, so
# an image that crashes the worker every time cannot loop for ever. The staged original is kept.
GALLERY_MAX_ATTEMPTS = env_int("GALLERY_MAX_ATTEMPTS", 10)
# --- Cost control (gallery/admission.py, gallery/quotas.py, gallery/worker/tasks.py) -------------
# Work cap per photo: the estimated encode seconds (megapixels × measured seconds/MP of the effort,
# busy-box numbers) an upload may cost. Over it at the configured effort → the cheapest effort that
# fits; over it even at "fast" → refused at upload with a per-file message (0 = no cap).
GALLERY_MAX_ENCODE_SECONDS = env_int("GALLERY_MAX_ENCODE_SECONDS", 1800)
# Wall-clock limits of one encode attempt (Celery soft/hard time limits): over the soft one the photo
# is retried at a cheaper effort (default → fast), then failed with a message (original kept).
GALLERY_TASK_SOFT_TIME_LIMIT = env_int("GALLERY_TASK_SOFT_TIME_LIMIT", 2 * GALLERY_MAX_ENCODE_SECONDS or 3600)
GALLERY_TASK_TIME_LIMIT = env_int("GALLERY_TASK_TIME_LIMIT", GALLERY_TASK_SOFT_TIME_LIMIT + 120)
# Address-space limit of each encoding pool process (RLIMIT_AS, bytes; 0 = none): an allocation over it
# fails the attempt like the time limit does. A warm taesd worker maps ~1.3 GB.
GALLERY_TASK_MEMORY_LIMIT = env_int("GALLERY_TASK_MEMORY_LIMIT", 8 * 2**30)
# Admission table overrides: effort → busy-box encode seconds per megapixel (gallery/admission.py
# SECONDS_PER_MP has the measured values; entries here replace them, e.g. for a faster machine).
GALLERY_ADMISSION_SECONDS_PER_MP: dict[str, float] = {}
# Decode work limit (codec.options.DecodeLimits.max_work, units of codec/container/cost.py) for every
# decode a worker does (previews, full-size downloads); 0 = no limit. The site's own largest files
# (GALLERY_MAX_PIXELS = 40 MP at scale 1) cost ≤ 62.5 units, a 12 MP photo 16.9 (≈100 s on 2 cores).
GALLERY_DECODE_MAX_WORK = float(os.environ.get("GALLERY_DECODE_MAX_WORK", "").strip() or 64)
# Fair share: encodes of one user in the broker at once; the rest of a batch waits in the outbox and
# users are interleaved round-robin (0 = no cap).
GALLERY_USER_MAX_IN_FLIGHT = env_int("GALLERY_USER_MAX_IN_FLIGHT", 2)
# Upload quotas per non-staff user (0 = unlimited); per-user overrides: UserQuota rows in the admin.
GALLERY_QUOTA_UPLOADS_PER_HOUR = env_int("GALLERY_QUOTA_UPLOADS_PER_HOUR", 500)
GALLERY_QUOTA_BYTES_PER_DAY = env_int("GALLERY_QUOTA_BYTES_PER_DAY", 5 * 2**30)

# --- Redis from a request path: short timeouts (a down or paused Redis must not hang a page) ------
# Seconds to connect to / wait for an answer from Redis (cache and broker). The web process falls
# back when they pass (gallery/resilience.py); kombu's BRPOP in workers is not bound by them.
REDIS_CONNECT_TIMEOUT = float(os.environ.get("REDIS_CONNECT_TIMEOUT", "1.0"))
REDIS_SOCKET_TIMEOUT = float(os.environ.get("REDIS_SOCKET_TIMEOUT", "1.0"))

# --- cache (preview "being generated" markers, remembered preview existence) -------------------
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "OPTIONS": {
                "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
# Queues: "gpu" runs the codec (encodes, preview renders), "maintenance" the sweeper, so a sweep never
# waits behind a backlog of encodes. A worker started without -Q consumes both; one started with
# -Q gpu adds GALLERY_WORKER_QUEUES (gallery/worker/tasks.py); a dedicated `-Q maintenance` worker
# never loads the model.
GALLERY_GPU_QUEUE = "gpu"
GALLERY_MAINTENANCE_QUEUE = "maintenance"
# (GALLERY_WORKER_QUEUES=gpu keeps -Q gpu workers off maintenance when a dedicated worker runs it)
GALLERY_WORKER_QUEUES = env_list("GALLERY_WORKER_QUEUES", [GALLERY_GPU_QUEUE, GALLERY_MAINTENANCE_QUEUE])
# The JPEG/WebP/AVIF comparisons of a READY photo: "" = in the encode task right after READY (one
# box); a queue name (compose: "cpu") = a separate task (gallery.make_comparisons) on that queue, so
# a GPU worker's threads go back to encoding instead of running CPU codecs (≈ 3 s of CPU per 768×512).
GALLERY_COMPARISONS_QUEUE = os.environ.get("GALLERY_COMPARISONS_QUEUE", "").strip()
_QUEUES = [GALLERY_GPU_QUEUE, GALLERY_MAINTENANCE_QUEUE, GALLERY_COMPARISONS_QUEUE]
CELERY_TASK_QUEUES = {name: {"routing_key": name} for name in dict.fromkeys(_QUEUES) if name}
CELERY_TASK_DEFAULT_QUEUE = GALLERY_GPU_QUEUE
CELERY_TASK_ROUTES = {
    "gallery.sweep": {"queue": GALLERY_MAINTENANCE_QUEUE},
    "gallery.relay_outbox": {"queue": GALLERY_MAINTENANCE_QUEUE},
    "gallery.make_comparisons": {"queue": GALLERY_COMPARISONS_QUEUE or GALLERY_GPU_QUEUE},
    "gallery.*": {"queue": GALLERY_GPU_QUEUE},
}
# A worker that cannot load its model (weights missing or damaged, unknown model/effort) exits at
# start (status 78) instead of consuming (gallery/worker/runtime.py); 0 turns the check off.
GALLERY_WORKER_CHECK_MODEL = env_bool("GALLERY_WORKER_CHECK_MODEL", True)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A new pool process loads and warms the model (gallery.tasks._warm_model) before it reports "up";
# Celery's default of 4 s kills it as hung on a busy CPU, and the replacement after a crashed child
# then loops for ever (found by the SIGKILL drill in tests/reliability/test_faults.py).
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_int("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 180)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message that was delivered but never acknowledged (worker killed) is redelivered after this.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # A publish from a request (an upload) gives up after about this long when Redis is down or
    # paused; the photo stays pending with its original and the sweeper queues it later.
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
}
# Publishing from a request gives up at the first failure (the default retries 3 times per call);
# the photo waits pending with its original and the sweeper queues it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 0,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
# The sweeper (gallery/sweeper.py): re-queues photos whose encode task was lost (broker restart,
# broker down at upload time, worker killed mid-encode) and deletes stored files of deleted photos.
# Run by beat (the maintenance worker with -B, or `celery beat`) and by `manage.py sweep`.
# Recovery uses leases, not the broker's visibility timeout (gallery/leases.py): the encoding worker
# renews its photo's lease every GALLERY_HEARTBEAT_SECONDS; a lease not renewed for
# GALLERY_LEASE_SECONDS means that worker is gone, and the next sweep re-queues the photo. A pending
# photo is re-queued when no message for it is waiting in or held from the broker for
# GALLERY_SWEEP_PENDING_AFTER seconds. Worst case kill -9 → re-queued: lease + interval ≈ 45 s.
GALLERY_LEASE_SECONDS = env_int("GALLERY_LEASE_SECONDS", 30)
GALLERY_HEARTBEAT_SECONDS = env_int("GALLERY_HEARTBEAT_SECONDS", 5)
GALLERY_SWEEP_INTERVAL = env_int("GALLERY_SWEEP_INTERVAL", 15)
GALLERY_SWEEP_PENDING_AFTER = env_int("GALLERY_SWEEP_PENDING_AFTER", 30)
# only for an `encoding` photo without a lease (a worker of an older release, or a lost release)
GALLERY_SWEEP_ENCODING_AFTER = env_int("GALLERY_SWEEP_ENCODING_AFTER", 1800)
GALLERY_SWEEP_ORPHAN_AFTER = env_int("GALLERY_SWEEP_ORPHAN_AFTER", 3600)
# the beat sweep lists the media storage for orphaned files at most this often (seconds)
GALLERY_SWEEP_ORPHAN_INTERVAL = env_int("GALLERY_SWEEP_ORPHAN_INTERVAL", 300)
# The outbox relay (gallery/outbox.py) publishes task messages an upload could not (broker down).
GALLERY_OUTBOX_RELAY_INTERVAL = env_int("GALLERY_OUTBOX_RELAY_INTERVAL", 10)
CELERY_BEAT_SCHEDULE = {
    "gallery-relay-outbox": {
        "task": "gallery.relay_outbox",
        "schedule": float(GALLERY_OUTBOX_RELAY_INTERVAL),
        "options": {"expires": float(GALLERY_OUTBOX_RELAY_INTERVAL)},
    },
    # a sweep that waited longer than one interval is dropped: the next one does the same work
    "gallery-sweep": {
        "task": "gallery.sweep",
        "schedule": float(GALLERY_SWEEP_INTERVAL),
        "options": {"expires": float(GALLERY_SWEEP_INTERVAL)},
    },
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Celery's per-task INFO lines of the beat's housekeeping tasks (~35 a minute when idle) are dropped
    "filters": {"quiet_housekeeping": {"()": "gallery.logfilters.QuietHousekeeping"}},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        **{name: {"filters": ["quiet_housekeeping"]}
           for name in ("celery.beat", "celery.worker.strategy", "celery.worker.request",
                        "celery.app.trace")},
    },
}

# --- ops: health checks, login throttling, Content-Security-Policy ------------------------------
# (one block on purpose: gallery/health.py, gallery/throttle.py, gallery/middleware.py read it)
# /readyz: each check (database, storage, broker, worker) is bounded by this many seconds (≤ 1);
# answers are cached briefly so a load balancer's polling costs little. Components whose failure
# makes /readyz answer 503 (the broker and workers only degrade the site: uploads wait in the DB).
GALLERY_HEALTH_TIMEOUT = min(float(os.environ.get("GALLERY_HEALTH_TIMEOUT", "1.0")), 1.0)
GALLERY_HEALTH_CACHE_SECONDS = float(os.environ.get("GALLERY_HEALTH_CACHE_SECONDS", "2.0"))
GALLERY_READY_REQUIRES = env_list("GALLERY_READY_REQUIRES", ["database", "storage"])

# Login throttling (django-axes, records in the database): after LOGIN_FAILURE_LIMIT wrong
# passwords for one username from one address, sign-in is refused with a 429 and a clear message
# for LOGIN_LOCKOUT_MINUTES (the admin's "Access attempts" or `manage.py axes_reset` unlock).
INSTALLED_APPS.append("axes")
AUTHENTICATION_BACKENDS = [
    "gallery.throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # axes wants to be last
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = env_int("LOGIN_LOCKOUT_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "gallery.throttle.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # no row per successful login
AXES_VERBOSE = False
# Reverse proxies in front of the web process (compose: 1, the TLS proxy): the client address is
# then read from X-Forwarded-For, N entries from the right. 0: REMOTE_ADDR.
GALLERY_TRUSTED_PROXIES = env_int("GALLERY_TRUSTED_PROXIES", 0)
AXES_CLIENT_IP_CALLABLE = "gallery.throttle.client_ip"

# Content-Security-Policy on every response (gallery.middleware.ContentSecurityPolicyMiddleware):
# scripts and styles only from our own static files (no inline code), images also as data:/blob:
# and, with S3 media, from the bucket's endpoint (previews redirect to signed URLs).
_csp_img = ["'self'", "data:", "blob:"]
if AWS_STORAGE_BUCKET_NAME:
    _endpoint = os.environ.get("AWS_S3_ENDPOINT_URL", "").rstrip("/")
    _csp_img.append(_endpoint or "https://*.amazonaws.com")
GALLERY_CSP = os.environ.get("GALLERY_CSP") or "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    f"img-src {' '.join(_csp_img)}",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
# 1: send it as Content-Security-Policy-Report-Only (violations are reported, nothing blocked).
GALLERY_CSP_REPORT_ONLY = env_bool("GALLERY_CSP_REPORT_ONLY", False)
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "gallery.middleware.ContentSecurityPolicyMiddleware",
)
