"""gunicorn settings, read from the project directory by default."""

import sys


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
