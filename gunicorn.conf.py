"""gunicorn settings, read from the project directory by default."""

import os
import re
import sys

from gunicorn.glogging import Logger

# Access log on stdout ('' turns it off, as the benchmarks do).
accesslog = os.environ.get('GUNICORN_ACCESS_LOG', '-') or None

# gunicorn 27's control socket (for `gunicornc`) defaults to one path per
# user, ~/.gunicorn/gunicorn.ctl (or $XDG_RUNTIME_DIR/gunicorn.ctl), shared by
# every instance: stopping one removed the socket of the others. Off unless
# GUNICORN_CONTROL_SOCKET names one for this instance.
control_socket = os.environ.get('GUNICORN_CONTROL_SOCKET', '')
control_socket_disable = not control_socket

CONTROL = re.compile('[\x00-\x1f\x7f-\x9f]')


class RedactingLogger(Logger):
    """Access lines without the token of any emailed link (the list is
    app.links.EMAILED, filled by the app's routes), one line per request."""

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


def post_worker_init(worker):
    """Start this worker's outbox sender now, not at its first request.

    With MAIL_SENDER_ENABLED=false the web workers only queue email and
    `flask mail worker` processes send it.
    """
    app = worker.wsgi
    sender = getattr(app, 'extensions', {}).get('outbox')
    if sender is not None and app.config['MAIL_SENDER_ENABLED']:
        # Hand the GIL back to request threads within 1 ms (default 5 ms), so
        # a busy sender does not add its time slices to response times.
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
        sender.start()


def worker_exit(server, worker):
    """Let the sender finish the message in hand; the rest stays queued."""
    app = worker.wsgi
    sender = getattr(app, 'extensions', {}).get('outbox')
    if sender is not None:
        sender.stop(timeout=app.config['MAIL_TIMEOUT'] + 5)
