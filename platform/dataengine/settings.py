"""All settings, read from environment variables (parsed strictly in :mod:`dataengine.env`).

With no environment at all the platform runs on its embedded default: SQLite, a local media
folder and a Celery broker on the filesystem (no server needed). ``DATABASE_URL``,
``CELERY_BROKER_URL`` and ``STORAGE_BACKEND=s3`` move it onto real services.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dataengine.demo import LOCAL_HOSTS, check_local_hosts
from dataengine.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_secret_key,
    env_str,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(env_str("DATA_DIR", str(REPO_ROOT / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# Demo mode (`make run`): a local trial on this machine only. It may start without SECRET_KEY (a
# random one is generated once in DATA_DIR) and may hold demo accounts; it serves loopback
# clients only. Everywhere else SECRET_KEY must be set to a random value.
DEMO_MODE = env_bool("DEMO_MODE", False)
SECRET_KEY = env_secret_key(demo_mode=DEMO_MODE, data_dir=DATA_DIR)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", list(LOCAL_HOSTS))
if DEMO_MODE:
    check_local_hosts(ALLOWED_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets served locally (/api/docs/ works offline)
    "engine",
    "webapp",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "webapp.errors.DomainErrorMiddleware",
    # a view that finds the database or the broker gone answers 503, not 500
    "dataengine.outage.ServiceOutageMiddleware",
]
if DEMO_MODE:
    MIDDLEWARE.insert(0, "dataengine.demo.LoopbackOnlyMiddleware")

ROOT_URLCONF = "dataengine.urls"
ASGI_APPLICATION = "dataengine.asgi.application"
WSGI_APPLICATION = "dataengine.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [REPO_ROOT / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    if not DATABASE_URL.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgresql:// or sqlite:// URL, got {DATABASE_URL.split(':')[0]}://"
        )
    # 0 (a connection per request) by default: under ASGI every request may run in another
    # thread, and persistent connections piled up past PostgreSQL's max_connections under load
    # (benchmarks/bench_load.py); a pooler (pgbouncer) is the way to reuse them
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0),
            # a kept connection that PostgreSQL dropped (a restart) is replaced, not reused
            conn_health_checks=True,
        )
    }
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # an unreachable server fails a request in seconds instead of hanging it
        connect_timeout = env_int("DB_CONNECT_TIMEOUT", 5, minimum=1)
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["connect_timeout"] = connect_timeout
        # A pool per process (psycopg_pool through Django's "pool" option): a request borrows
        # a connection instead of opening one (4.4 ms on a 2-core machine, on every click),
        # and a process never holds more than DB_POOL_MAX_SIZE, so ASGI threads wait for one
        # instead of piling connections up. Celery workers connect directly (workers.celery:
        # in prefork, Celery's Django fixup closes a pool after every task).
        pool_max = env_int("DB_POOL_MAX_SIZE", 8, minimum=0)
        if pool_max and not DATABASES["default"]["CONN_MAX_AGE"]:
            options["pool"] = {"min_size": 1, "max_size": pool_max, "timeout": connect_timeout}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "db.sqlite3"),
            # Web process and worker write concurrently; wait instead of failing on a lock.
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, so a worker process in the tests can share the test database; one per
    # test process so concurrent runs do not write into each other's database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
MIGRATION_MODULES = {"engine": "migrations.engine"}
AUTH_USER_MODEL = "engine.User"

# --- storage ----------------------------------------------------------------------------------
STORAGE_BACKEND = env_choice("STORAGE_BACKEND", "local", ("local", "s3"))
MEDIA_ROOT = str(Path(env_str("MEDIA_ROOT", str(DATA_DIR / "media"))).resolve())
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = str(DATA_DIR / "static")
STATICFILES_DIRS = [REPO_ROOT / "frontend" / "static"]

# S3 credentials serve both the S3 storage backend and `import_videos s3://bucket/prefix`.
S3_ENDPOINT_URL = env_str("S3_ENDPOINT_URL")
S3_ACCESS_KEY_ID = env_str("S3_ACCESS_KEY_ID")
S3_SECRET_ACCESS_KEY = env_str("S3_SECRET_ACCESS_KEY")
S3_REGION = env_str("S3_REGION", "us-east-1")

if STORAGE_BACKEND == "s3":
    _bucket = env_str("S3_BUCKET")
    if not _bucket:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs S3_BUCKET")
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _bucket,
            "endpoint_url": S3_ENDPOINT_URL or None,
            "access_key": S3_ACCESS_KEY_ID or None,
            "secret_key": S3_SECRET_ACCESS_KEY or None,
            "region_name": S3_REGION,
            "addressing_style": env_choice("S3_ADDRESSING_STYLE", "path", ("path", "virtual")),
            "signature_version": "s3v4",
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- ingest limits ----------------------------------------------------------------------------
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 2 * 1024**3, minimum=1)
MAX_VIDEO_WIDTH = env_int("MAX_VIDEO_WIDTH", 3840, minimum=16)
MAX_VIDEO_HEIGHT = env_int("MAX_VIDEO_HEIGHT", 2160, minimum=16)
MAX_VIDEO_SECONDS = env_float("MAX_VIDEO_SECONDS", 600.0, minimum=0.1)
DEFAULT_ANNOTATION_FPS = env_float("DEFAULT_ANNOTATION_FPS", 6.0, minimum=0.1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024**2  # larger uploads stream to a temporary file
FILE_UPLOAD_TEMP_DIR = None
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 300, minimum=10)
# A running job whose worker was lost this many times fails instead of being resent again.
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3, minimum=1)
# How often Celery beat looks for jobs whose worker or message was lost.
JOB_RECOVERY_INTERVAL_SECONDS = env_int("JOB_RECOVERY_INTERVAL_SECONDS", 60, minimum=5)

# Masklet quality estimator (engine.quality): verdicts of each class (accepted, failed) needed
# before it orders the review queue or may auto-accept; new verdicts that trigger a retraining;
# how often beat runs the sweep.
QUALITY_MIN_VERDICTS_PER_CLASS = env_int("QUALITY_MIN_VERDICTS_PER_CLASS", 20, minimum=2)
QUALITY_RETRAIN_AFTER_VERDICTS = env_int("QUALITY_RETRAIN_AFTER_VERDICTS", 25, minimum=1)
QUALITY_SWEEP_INTERVAL_SECONDS = env_int("QUALITY_SWEEP_INTERVAL_SECONDS", 120, minimum=10)

# --- model (SAM 2 workers) ---------------------------------------------------------------------
# Which model a worker loads when no ModelVersion is promoted: a checkpoint file (with its config
# name) or an official name looked up in SAM2_CHECKPOINT_DIR (never downloaded implicitly).
SAM2_CHECKPOINT = env_str("SAM2_CHECKPOINT")
SAM2_CONFIG = env_str("SAM2_CONFIG")
SAM2_CHECKPOINT_DIR = env_str("SAM2_CHECKPOINT_DIR")
SAM2_DEVICE = env_choice("SAM2_DEVICE", "auto", ("auto", "cpu", "cuda"))
SAM2_CACHE_DIR = env_str("SAM2_CACHE_DIR", str(DATA_DIR / "models"))
SAM2_MODEL_CACHE_SIZE = env_int("SAM2_MODEL_CACHE_SIZE", 1, minimum=1)
SAM2_TORCH_THREADS = env_int("SAM2_TORCH_THREADS", 0, minimum=0)

# --- retraining rounds and the model out of the box (engine.training) --------------------------
# A candidate is promoted when its paired held-out difference on ROUND_PROMOTION_METRIC (J&F after
# 3 clicks) is positive and at least this margin.
ROUND_PROMOTION_MARGIN = env_float("ROUND_PROMOTION_MARGIN", 0.0, minimum=0.0)
ROUND_PROMOTION_METRIC = env_choice(
    "ROUND_PROMOTION_METRIC", "jf_3", ("jf_1", "jf_3", "jf_5", "jf_mask")
)
# Share of videos held out for evaluation (by a hash of the video id; once held out, always).
ROUND_HOLDOUT_FRACTION = env_float("ROUND_HOLDOUT_FRACTION", 0.2, minimum=0.0)
ROUND_MAX_CLIP_FRAMES = env_int("ROUND_MAX_CLIP_FRAMES", 48, minimum=2)
ROUND_NUM_FRAMES = env_int("ROUND_NUM_FRAMES", 8, minimum=1)
ROUND_MAX_OBJECTS = env_int("ROUND_MAX_OBJECTS", 3, minimum=1)
ROUND_EVAL_MAX_VIDEOS = env_int("ROUND_EVAL_MAX_VIDEOS", 20, minimum=1)
# Fine-tuning learning rates (Meta's MOSE fine-tuning recipe: 5e-6, image encoder 3e-6).
ROUND_BASE_LR = env_float("ROUND_BASE_LR", 5e-6, minimum=0.0)
ROUND_VISION_LR = env_float("ROUND_VISION_LR", 3e-6, minimum=0.0)
# `manage.py ensure_model`: how long to wait for Meta's download server before training the
# offline demo model instead (cached under DEMO_MODEL_DIR, made once per recipe).
MODEL_DOWNLOAD_TIMEOUT_SECONDS = env_float("MODEL_DOWNLOAD_TIMEOUT_SECONDS", 10.0, minimum=0.1)
DEMO_MODEL_DIR = env_str("DEMO_MODEL_DIR", str(DATA_DIR / "demo-model"))

# --- Celery -----------------------------------------------------------------------------------
_BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("in", "processed"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_BROKER_DIR / "in"),
        "data_folder_out": str(_BROKER_DIR / "in"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers unacknowledged tasks after this long; above the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
# Results are kept only for request/reply calls (an interactive click waits for its mask;
# every other task ignores its result): Redis when the broker is Redis, Celery's file backend
# under DATA_DIR for the embedded filesystem broker, RPC replies otherwise.
if CELERY_BROKER_URL.startswith("filesystem://"):
    (DATA_DIR / "results").mkdir(parents=True, exist_ok=True)
    _RESULT_DEFAULT = "file://" + str(DATA_DIR / "results")
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _RESULT_DEFAULT = CELERY_BROKER_URL
else:
    _RESULT_DEFAULT = "rpc://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _RESULT_DEFAULT)
CELERY_RESULT_EXPIRES = 3600
# Each worker also consumes its own queue (``<nodename>.dq2``): a click goes to the worker that
# holds the annotator's session (engine.annotation.serving).
CELERY_WORKER_DIRECT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_QUEUES_ALL = ("default", "interactive", "propagate", "train")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker whose broker restarts reconnects for as long as it takes (Celery's default gives up
# after 100 tries and the worker exits); tasks running meanwhile go on (their job rows fence
# their writes; the recovery sweep resends what the restarted broker lost).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# The queue of each task (engine's sends also name it, from engine.jobs.lifecycle.JOB_TASKS;
# a test checks that the two agree).
CELERY_TASK_ROUTES = {
    "workers.ingest_video": {"queue": "default"},
    "workers.run_export": {"queue": "default"},
    "workers.run_import": {"queue": "default"},
    "workers.auto_masklets": {"queue": "propagate"},
    "workers.recover_orphaned_jobs": {"queue": "default"},
    "workers.expire_annotation_leases": {"queue": "default"},
    "workers.annotation_prompt": {"queue": "interactive"},
    "workers.annotation_warm": {"queue": "interactive"},
    "workers.model_warm": {"queue": "interactive"},  # sent to a worker's own direct queue
    "workers.propagate_masklet": {"queue": "propagate"},
    "workers.train_round": {"queue": "train"},
    "workers.start_due_rounds": {"queue": "default"},
    "workers.quality_sweep": {"queue": "default"},
    "workers.prune_model_sessions": {"queue": "default"},
}
# engine sends tasks by name through this function (engine.jobs.dispatch imports it on first
# use; a dotted path here keeps engine free of Celery and workers).
TASK_SENDER = "workers.dispatch.send_task"
# Request/reply calls (engine.jobs.dispatch.call_task): send, then wait for the result.
TASK_CALLER = "workers.dispatch.call_task"
# Interactive serving (engine.annotation.serving, sessions): sessions per worker process, their
# idle timeout, frames whose features each session keeps, how long a click waits for the
# worker holding its session before any interactive worker rebuilds it, and for any worker.
ANNOTATION_SESSIONS_MAX = env_int("ANNOTATION_SESSIONS_MAX", 4, minimum=1)
ANNOTATION_SESSION_IDLE_SECONDS = env_int("ANNOTATION_SESSION_IDLE_SECONDS", 1800, minimum=10)
ANNOTATION_FEATURE_FRAMES = env_int("ANNOTATION_FEATURE_FRAMES", 8, minimum=1)
ANNOTATION_DIRECT_TIMEOUT_SECONDS = env_float("ANNOTATION_DIRECT_TIMEOUT_SECONDS", 5.0, minimum=0.1)
ANNOTATION_PROMPT_TIMEOUT_SECONDS = env_float("ANNOTATION_PROMPT_TIMEOUT_SECONDS", 55.0, minimum=1)
# Model-session rows (routes to the worker holding a session) are pruned by beat every
# ANNOTATION_SESSION_PRUNE_INTERVAL_SECONDS: idle past ANNOTATION_SESSION_IDLE_SECONDS, or naming a
# worker that did not answer a ping and unused for the grace (engine.annotation.session_pruning).
ANNOTATION_SESSION_PRUNE_INTERVAL_SECONDS = env_int(
    "ANNOTATION_SESSION_PRUNE_INTERVAL_SECONDS", 300, minimum=10
)
ANNOTATION_SESSION_LOST_GRACE_SECONDS = env_int(
    "ANNOTATION_SESSION_LOST_GRACE_SECONDS", 120, minimum=10
)
# Frames embedded in the background when an annotator takes a video (0: off).
ANNOTATION_WARM_FRAMES = env_int("ANNOTATION_WARM_FRAMES", 2, minimum=0)
# The frame the workspace's cursor rests on is embedded before the first click there (off: the
# page's requests are accepted and nothing is sent, e.g. for CPU workers shared by many).
ANNOTATION_WARM_ON_REST = env_bool("ANNOTATION_WARM_ON_REST", True)
# Frame features and session states that interactive and propagate workers share (a folder all
# of them see; "" switches sharing off: workers then compute and replay); features are bounded.
ANNOTATION_STATE_DIR = env_str("ANNOTATION_STATE_DIR", str(DATA_DIR / "annotation-state"))
ANNOTATION_FEATURE_STORE_MB = env_int("ANNOTATION_FEATURE_STORE_MB", 20_000, minimum=0)
# Celery beat (`make run` embeds it in the worker with -B; run one `celery -A workers beat`
# per deployment otherwise).
CELERY_BEAT_SCHEDULE = {
    "recover-orphaned-jobs": {
        "task": "workers.recover_orphaned_jobs",
        "schedule": float(JOB_RECOVERY_INTERVAL_SECONDS),
        "options": {"queue": "default", "expires": float(JOB_RECOVERY_INTERVAL_SECONDS)},
    },
    # Expired annotate and fix leases go back to the annotators' queue.
    "expire-annotation-leases": {
        "task": "workers.expire_annotation_leases",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 60.0},
    },
    # Retraining rounds whose per-project trigger fired (engine.training.triggers).
    "start-due-rounds": {
        "task": "workers.start_due_rounds",
        "schedule": 60.0,
        "options": {"queue": "default", "expires": 60.0},
    },
    # Model-session rows of idle sessions and lost workers (engine.annotation.session_pruning).
    "prune-model-sessions": {
        "task": "workers.prune_model_sessions",
        "schedule": float(ANNOTATION_SESSION_PRUNE_INTERVAL_SECONDS),
        "options": {
            "queue": "default",
            "expires": float(ANNOTATION_SESSION_PRUNE_INTERVAL_SECONDS),
        },
    },
    # Quality estimators: retrain when due, score waiting masklets, auto-accept (engine.quality).
    "quality-sweep": {
        "task": "workers.quality_sweep",
        "schedule": float(QUALITY_SWEEP_INTERVAL_SECONDS),
        "options": {"queue": "default", "expires": float(QUALITY_SWEEP_INTERVAL_SECONDS)},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# --- auth and API -----------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "api.parsers.StrictMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SAM 2 data engine API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request and response components apart, so multipart FileFields are binary uploads.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two choice sets named "role": the account's role and the project member's role.
    "ENUM_NAME_OVERRIDES": {
        "AccountRoleEnum": "engine.models.Role",
        "ProjectRoleEnum": "engine.accounts.membership.PROJECT_ROLES",
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
    },
}
