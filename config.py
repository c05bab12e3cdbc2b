"""Configuration, read from the environment (and `.env`) once at import."""

import os
import secrets
import warnings

from dotenv import load_dotenv

basedir = os.path.abspath(os.path.dirname(__file__))
load_dotenv(os.path.join(basedir, '.env'))

_TRUE = {'1', 'true', 'yes', 'on'}
_FALSE = {'0', 'false', 'no', 'off'}

# Values that cannot be read, one sentence each: `check_config` refuses to
# start with the first (here an exception would be a traceback at import).
PROBLEMS: list[str] = []


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value; blank, or only spaces, means the default."""
    value = os.environ.get(name, '').strip()
    return value or default


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean that means what it says: `0`/`false`/`off` are off."""
    value = (env_str(name) or '').lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value not in _FALSE:
        PROBLEMS.append(f'{name}={value!r} is not understood: set it to true or false.')
    return False


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        PROBLEMS.append(f'{name}={value!r} is not a whole number: set it to one, '
                        f'or leave it blank for the default ({default}).')  # fmt: skip
        return default


def env_float(name: str, default: float) -> float:
    value = env_str(name)
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        PROBLEMS.append(f'{name}={value!r} is not a number of seconds: set one, '
                        f'or leave it blank for the default ({default}).')  # fmt: skip
        return default


def env_list(name: str) -> list[str]:
    return [x.strip() for x in os.environ.get(name, '').split(',') if x.strip()]


def env_mapping(name: str) -> dict[str, str]:
    """`a=1/hour,b=none` -> {'a': '1/hour', 'b': 'none'}."""
    pairs = (item.partition('=') for item in env_list(name))
    return {key.strip(): value.strip() for key, _, value in pairs}


APP_ENV = env_str('APP_ENV', 'production').lower()
DEVELOPMENT = APP_ENV == 'development'


def _secret_key() -> str | None:
    key = os.environ.get('SECRET_KEY') or None
    if key or not DEVELOPMENT:
        return key  # production checks it in create_app
    warnings.warn(
        'SECRET_KEY is not set: using a random key for this process only. '
        '`make run` writes a permanent one into .env; or make one with '
        '`python -c "import secrets; print(secrets.token_urlsafe(48))"` and '
        'set SECRET_KEY to it in .env.',
        stacklevel=2,
    )
    return secrets.token_urlsafe(32)


class Config:
    APP_ENV = APP_ENV
    SECRET_KEY = _secret_key()
    # Earlier keys, comma-separated: sessions and emailed links signed with
    # them still verify after SECRET_KEY is rotated; new ones use SECRET_KEY.
    SECRET_KEY_FALLBACKS = env_list('SECRET_KEY_FALLBACKS')

    SQLALCHEMY_DATABASE_URI = env_str('DATABASE_URL') or 'sqlite:///' + os.path.join(
        basedir, 'app.db'
    )
    SQLITE_BUSY_TIMEOUT_MS = env_int('SQLITE_BUSY_TIMEOUT_MS', 15000)
    SQLALCHEMY_ENGINE_OPTIONS = {
        # Error messages and logs never carry SQL parameters (hashes, tokens).
        'hide_parameters': True,
    }
    # PostgreSQL: seconds to wait for a connection (libpq counts at least 2),
    # and milliseconds a statement may run before the server cancels it
    # (0: no limit), so a hung database cannot hang a request or a start.
    DATABASE_CONNECT_TIMEOUT = env_int('DATABASE_CONNECT_TIMEOUT', 5)
    DATABASE_STATEMENT_TIMEOUT = env_int('DATABASE_STATEMENT_TIMEOUT', 10000)
    # Request bodies over this many bytes get a 413 before they are read.
    MAX_CONTENT_LENGTH = env_int('MAX_CONTENT_LENGTH', 64 * 1024)
    # ... and a single form field over this many bytes, too.
    MAX_FORM_MEMORY_SIZE = env_int('MAX_FORM_MEMORY_SIZE', 16 * 1024)

    # The public address: every link in an email is built from these two,
    # never from the Host header of whoever made the request.
    # Development serves and links to localhost:5000 (`make run`, `flask run`
    # through .flaskenv): the same host, so the browser keeps its cookies when
    # following a link; a name, not an IP, as a passkey's relying party must be.
    SERVER_NAME = env_str('SERVER_NAME', 'localhost:5000' if DEVELOPMENT else None)
    PREFERRED_URL_SCHEME = env_str('PREFERRED_URL_SCHEME', 'http').lower()
    # Production refuses a loopback SERVER_NAME and plain http unless this
    # says the run is a local trial (tests, benchmarks).
    INSECURE_LOCAL_PRODUCTION = env_bool('INSECURE_LOCAL_PRODUCTION')
    # Hosts accepted in requests outside development (default: SERVER_NAME's).
    TRUSTED_HOSTS = env_list('TRUSTED_HOSTS') or None
    # Number of reverse proxies whose X-Forwarded-* headers are believed.
    PROXY_FIX = env_int('PROXY_FIX', 0)
    # /healthz and /readyz answer whatever the Host header (load balancers
    # and orchestrators probe by address); off, they are checked as any page.
    HEALTH_ANY_HOST = env_bool('HEALTH_ANY_HOST')

    MAIL_SERVER = env_str('MAIL_SERVER')
    MAIL_PORT = env_int('MAIL_PORT', 25)
    MAIL_USE_TLS = env_bool('MAIL_USE_TLS')
    MAIL_USE_SSL = env_bool('MAIL_USE_SSL')
    MAIL_USERNAME = env_str('MAIL_USERNAME')
    MAIL_PASSWORD = os.environ.get('MAIL_PASSWORD') or None
    MAIL_TIMEOUT = env_int('MAIL_TIMEOUT', 30)
    ADMINS = env_list('ADMINS')
    MAIL_DEFAULT_SENDER = env_str('MAIL_DEFAULT_SENDER') or (
        ADMINS[0] if ADMINS else 'no-reply@localhost'
    )
    # How long a transiently failing email keeps being retried, in seconds.
    MAIL_RETRY_PERIOD = env_int('MAIL_RETRY_PERIOD', 2 * 24 * 3600)
    # How long sent emails stay in the outbox before they are pruned.
    MAIL_RETENTION = env_int('MAIL_RETENTION', 7 * 24 * 3600)
    # Start the outbox sender thread in this process.
    MAIL_SENDER_ENABLED = env_bool('MAIL_SENDER_ENABLED', True)
    # How often an idle sender looks for work queued by other processes.
    MAIL_POLL_INTERVAL = env_float('MAIL_POLL_INTERVAL', 2)
    # While a request is being served, the sender waits up to this many
    # seconds before each message: pages first, email right after.
    MAIL_SENDER_YIELD = env_float('MAIL_SENDER_YIELD', 0.1)
    # Seconds a sender's claim on messages lasts without renewal. A working
    # sender renews it every third of this; a dead one's messages are back
    # in the queue within about 4/3 of it. Clocks must agree to well within.
    MAIL_LEASE = env_float('MAIL_LEASE', 30)

    POSTS_PER_PAGE = env_int('POSTS_PER_PAGE', 25)
    # The languages pages and emails are offered in (catalogs under
    # app/translations/), the first the fall-back.
    LANGUAGES = ('en', 'es', 'zh_Hans')
    # A username given up by a rename stays reserved to its owner this long.
    USERNAME_HOLD_DAYS = env_int('USERNAME_HOLD_DAYS', 30)
    # Seconds a proof of identity (sign-in, password, code) lets this session
    # make sensitive changes without being asked again.
    REAUTH_WINDOW = env_int('REAUTH_WINDOW', 600)
    # Days "Trust this browser" skips the second sign-in step.
    TRUSTED_BROWSER_DAYS = env_int('TRUSTED_BROWSER_DAYS', 30)
    # Days /security_log shows an event; the purge removes older ones.
    SECURITY_LOG_DAYS = env_int('SECURITY_LOG_DAYS', 90)
    # Days a deleted account can be restored from its emailed link; then
    # `flask account purge` (and the mail worker) removes it for good.
    ACCOUNT_DELETION_GRACE = env_int('ACCOUNT_DELETION_GRACE', 14)
    # Off: local identicons from a random seed; on: Gravatar (see README).
    GRAVATAR = env_bool('GRAVATAR', False)
    LOG_TO_STDOUT = env_bool('LOG_TO_STDOUT')

    # werkzeug's method string. scrypt costs about 100 ms a hash; not read
    # from the environment, as only TestConfig has a reason to change it.
    PASSWORD_HASH_METHOD = 'scrypt'

    # One reset email per account per this many seconds, whatever the load.
    RESET_EMAIL_INTERVAL = env_int('RESET_EMAIL_INTERVAL', 300)
    RESET_TOKEN_EXPIRES = env_int('RESET_TOKEN_EXPIRES', 600)
    # Links that confirm an address (sign-up or email change), in seconds.
    CONFIRM_TOKEN_EXPIRES = env_int('CONFIRM_TOKEN_EXPIRES', 24 * 3600)
    CONFIRM_RATE_LIMIT = env_str('CONFIRM_RATE_LIMIT', '3/hour')
    RATELIMIT_ENABLED = env_bool('RATELIMIT_ENABLED', True)
    RATELIMIT_STORAGE_URI = env_str('RATELIMIT_STORAGE_URI', 'memory://')
    # Prefix of every key in that store (for apps that share one Redis).
    RATELIMIT_KEY_PREFIX = env_str('RATELIMIT_KEY_PREFIX', '')
    # Seconds to wait for the limit store (Redis) to connect or answer: a
    # hung store costs one request this much, then limits count in memory.
    RATELIMIT_STORAGE_TIMEOUT = env_float('RATELIMIT_STORAGE_TIMEOUT', 0.25)
    RATELIMIT_HEADERS_ENABLED = False
    RESET_RATE_LIMIT = env_str('RESET_RATE_LIMIT', '5/minute;20/hour')
    LOGIN_RATE_LIMIT = env_str('LOGIN_RATE_LIMIT', '10/minute;50/hour')
    REGISTER_RATE_LIMIT = env_str('REGISTER_RATE_LIMIT', '5/minute;20/hour')
    # Passkey requests (each makes a challenge) per client; the sign-in page
    # makes one per visit for the autofill.
    PASSKEY_OPTIONS_LIMIT = env_str('PASSKEY_OPTIONS_LIMIT', '30/minute;300/hour')
    # Failed sign-ins per account (the typed username), whatever the client.
    LOGIN_ACCOUNT_LIMIT = env_str('LOGIN_ACCOUNT_LIMIT', '20/hour')
    # Wrong current passwords per account, on every page that asks for it;
    # the guess that spends it signs that session out and notifies the owner.
    PASSWORD_GUESS_BUDGET = env_str('PASSWORD_GUESS_BUDGET', '5/15minutes')
    # Emails of one kind that requests can cause per recipient address and
    # per account; per client (all kinds counted apart); per kind overrides
    # ('kind=limits,...', 'none' = no budget). Reset mail keeps its own
    # per-account throttle (RESET_EMAIL_INTERVAL).
    MAIL_BUDGET = env_str('MAIL_BUDGET', '3/hour;10/day')
    MAIL_CLIENT_BUDGET = env_str('MAIL_CLIENT_BUDGET', '20/hour;100/day')
    MAIL_BUDGETS = {
        'password_reset': 'none',
        'reset_email': 'none',
        # Deleting needs a recent proof; its restore link must always go.
        'account_restore': 'none',
        **env_mapping('MAIL_BUDGETS'),
    }
    # If a shared limit store (Redis) is down, count in this process instead.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = not RATELIMIT_STORAGE_URI.startswith(
        'memory'
    )
    RATELIMIT_SWALLOW_ERRORS = True

    BOOTSTRAP_SERVE_LOCAL = True
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = 'Lax'
    SESSION_COOKIE_SECURE = PREFERRED_URL_SCHEME == 'https'
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = 'Lax'
    REMEMBER_COOKIE_SECURE = PREFERRED_URL_SCHEME == 'https'
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    # last_seen, the profile's and each signed-in browser's, is written at
    # most once per this many seconds: no write per request.
    LAST_SEEN_INTERVAL = env_int('LAST_SEEN_INTERVAL', 60)
    # A sign-in ends on the server after this many seconds without a
    # request, and this many seconds after it began however active it is
    # (the remember-me cookie lasts as long: app.sessions.init_app).
    SESSION_IDLE_TIMEOUT = env_int('SESSION_IDLE_TIMEOUT', 30 * 24 * 3600)
    SESSION_MAX_AGE = env_int('SESSION_MAX_AGE', 365 * 24 * 3600)
    CONFIG_PROBLEMS = tuple(PROBLEMS)


class TestConfig(Config):
    APP_ENV = 'testing'
    TESTING = True
    SECRET_KEY = 'test-secret-key-that-is-long-enough-for-hs256-00'
    SQLALCHEMY_DATABASE_URI = os.environ.get('TEST_DATABASE_URL') or 'sqlite://'
    SERVER_NAME = 'microblog.test'
    PREFERRED_URL_SCHEME = 'https'
    WTF_CSRF_ENABLED = False
    MAIL_SERVER = '127.0.0.1'
    MAIL_PORT = 8025
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME = None
    MAIL_PASSWORD = None
    MAIL_SUPPRESS_SEND = False
    MAIL_SENDER_ENABLED = True
    MAIL_POLL_INTERVAL = 0.2
    MAIL_TIMEOUT = 10
    MAIL_DEFAULT_SENDER = 'no-reply@microblog.test'
    ADMINS = ['admin@microblog.test']
    RATELIMIT_ENABLED = False
    RATELIMIT_STORAGE_URI = 'memory://'
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = False
    GRAVATAR = True
    POSTS_PER_PAGE = 3
    # Cheap, so the suite runs in seconds; the tests of hashing set scrypt.
    PASSWORD_HASH_METHOD = 'pbkdf2:sha256:1000'
    CONFIG_PROBLEMS = ()
    # Every password form asks for the current password, as most tests
    # expect; the tests of the re-authentication window set one.
    REAUTH_WINDOW = 0
