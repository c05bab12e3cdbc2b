"""gunicorn settings, read from the project directory by default."""


def post_worker_init(worker):
    """Start this worker's outbox sender now, not at its first request."""
    app = worker.wsgi
    sender = getattr(app, 'extensions', {}).get('outbox')
    if sender is not None and app.config['MAIL_SENDER_ENABLED']:
        sender.start()


def worker_exit(server, worker):
    """Let the sender finish the message in hand; the rest stays queued."""
    app = worker.wsgi
    sender = getattr(app, 'extensions', {}).get('outbox')
    if sender is not None:
        sender.stop(timeout=app.config['MAIL_TIMEOUT'] + 5)
