"""gunicorn settings, read from the project directory by default."""

import os
import re
import sys

from dotenv import load_dotenv
from gunicorn.glogging import Logger

HERE = os.path.dirname(os.path.abspath(__file__))
# The same .env as the app's config.py (the real environment wins).
load_dotenv(os.path.join(HERE, '.env'))

# Access log: `-` is stdout (blank means that default too), `off` turns it
# off (the benchmarks do), anything else is a file path.
_access = os.environ.get('GUNICORN_ACCESS_LOG', '').strip() or '-'
accesslog = None if _access.lower() == 'off' else _access

QUIET_PATHS = frozenset({'/healthz', '/readyz'})  # app/health.py: probes

# gunicorn 27's control socket (for `gunicornc`) defaults to one path per
# user, ~/.gunicorn/gunicorn.ctl (or $XDG_RUNTIME_DIR/gunicorn.ctl), shared by
# every instance: stopping one removed the socket of the others. Off unless
# GUNICORN_CONTROL_SOCKET names one for this instance.
control_socket = os.environ.get('GUNICORN_CONTROL_SOCKET', '')
control_socket_disable = not control_socket

CONTROL = re.compile('[\x00-\x1f\x7f-\x9f]')


class RedactingLogger(Logger):
    """Access lines without the token of any emailed link (the list is
    app.links.EMAILED, filled by the app's routes), one line per request;
    health probes (every few seconds, from a load balancer) are not logged."""

    def access(self, resp, req, environ, request_time):
        if environ.get('PATH_INFO') not in QUIET_PATHS:
            super().access(resp, req, environ, request_time)

    def atoms(self, resp, req, environ, request_time):
        # Imported here: the worker has loaded the app, so every link is known.
        from app.links import redact

        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str):
                value = redact(value)
                atoms[key] = CONTROL.sub(
                    lambda m: m.group().encode('unicode_escape').decode(), value
                )
        return atoms


logger_class = RedactingLogger


def on_starting(server):
    """Check the app's settings once, before any worker starts.

    A start-up mistake is then one line and exit 1, instead of every worker
    failing in turn with a traceback. The check builds the app in a forked
    child, so this master process imports nothing of it (a HUP still loads
    the app and its .env afresh).
    """
    if os.environ.get('APP_ENV', 'production').strip().lower() == 'development':
        server.log.warning(DEVELOPMENT_UNDER_GUNICORN)
    if not str(getattr(server.app, 'app_uri', '')).startswith('microblog'):
        return
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            import microblog  # noqa: F401  (prints the mistake and exits 1)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code = 0  # anything else: the worker reports it as gunicorn does
        finally:
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 1:
        sys.exit(1)


DEVELOPMENT_UNDER_GUNICORN = (
    'APP_ENV=development under gunicorn: any SECRET_KEY passes, hosts are not '
    'checked and email goes to the console. For production set '
    'APP_ENV=production (see the README); .env.example is for development.'
)


def post_worker_init(worker):
    """Start this worker's outbox sender now, not at its first request.

    With MAIL_SENDER_ENABLED=false the web workers only queue email and
    `flask mail worker` processes send it.
    """
    app = getattr(worker, 'wsgi', None)
    sender = getattr(app, 'extensions', {}).get('outbox')
    if sender is not None and app.config['MAIL_SENDER_ENABLED']:
        # Hand the GIL back to request threads within 1 ms (default 5 ms), so
        # a busy sender does not add its time slices to response times.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        sender.start()


def worker_exit(server, worker):
    """Let the sender finish the message in hand; the rest stays queued.

    A worker whose app failed to load has no app (and no sender) to stop.
    """
    app = getattr(worker, 'wsgi', None)
    sender = getattr(app, 'extensions', {}).get('outbox')
    if sender is not None:
        sender.stop(timeout=app.config['MAIL_TIMEOUT'] + 5)
