"""The production profile: ``DJANGO_SETTINGS_MODULE=dataengine.settings_production``.

Everything of :mod:`dataengine.settings` (all read from the environment), plus what a deployment
behind a TLS-terminating proxy needs so that ``manage.py check --deploy`` has nothing to say:
HTTPS only (redirect, HSTS, secure cookies), a Content-Security-Policy (django-csp), and a lockout
after repeated failed logins (django-axes) on the login page, the admin and ``/api/token/``
(DRF's token view authenticates through ``django.contrib.auth.authenticate`` with the request, so
axes sees it). The embedded default (``make run``, DEMO_MODE) and the tests keep
:mod:`dataengine.settings`; demo mode is refused here.

Services it expects (README, Deployment): PostgreSQL (``DATABASE_URL``), Redis or RabbitMQ
(``CELERY_BROKER_URL``), S3 (``STORAGE_BACKEND=s3``), several workers per queue and one beat.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from dataengine.env import env_bool, env_float, env_int, env_list, env_str
from dataengine.settings import *  # noqa: F403
from dataengine.settings import (
    DEBUG,
    DEMO_MODE,
    INSTALLED_APPS,
    MIDDLEWARE,
    S3_ENDPOINT_URL,
    STORAGE_BACKEND,
)

if DEMO_MODE:
    raise ImproperlyConfigured("DEMO_MODE is a local trial: the production profile refuses it")
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in the production profile")

# --- HTTPS ----------------------------------------------------------------------------------
# The proxy terminates TLS and says so in X-Forwarded-Proto (set it there, and only there).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

# --- Content-Security-Policy (django-csp 4) ------------------------------------------------
# The pages load only their own ES modules and stylesheets (no inline script); a few templates
# still use style="" attributes, hence 'unsafe-inline' for styles alone. Frames and thumbnails are
# served by the platform (/media/), drawn on canvases (blob:/data: URLs).
_IMG_SRC = ["'self'", "data:", "blob:"]
if STORAGE_BACKEND == "s3" and S3_ENDPOINT_URL:
    _IMG_SRC.append(S3_ENDPOINT_URL)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": _IMG_SRC,
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- login throttling (django-axes) ---------------------------------------------------------
# After AXES_FAILURE_LIMIT failed logins for one username from one address, further attempts are
# refused for AXES_COOLOFF_HOURS (the page answers 429, /api/token/ 403) even with the right
# password; a success resets the count.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_HOURS", 0.25, minimum=0.0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

INSTALLED_APPS = [*INSTALLED_APPS, "csp", "axes"]
MIDDLEWARE = [
    *MIDDLEWARE[:1],  # SecurityMiddleware first: the HTTPS redirect comes before anything else
    "csp.middleware.CSPMiddleware",
    *MIDDLEWARE[1:],
    # Last: it turns a lockout found during authentication into the lockout response.
    "axes.middleware.AxesMiddleware",
]

# --- hosts ----------------------------------------------------------------------------------
# No loopback default here: the public host names must be given.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set: the production profile needs the site's host names"
    )
# ".example.com" in ALLOWED_HOSTS is every subdomain; CSRF's origin list writes it "*.example.com".
CSRF_TRUSTED_ORIGINS = env_list(
    "CSRF_TRUSTED_ORIGINS",
    [f"https://{'*' + h if h.startswith('.') else h}" for h in ALLOWED_HOSTS if h != "*"],
)
SITE_URL = env_str("SITE_URL", f"https://{ALLOWED_HOSTS[0].lstrip('.*')}")
