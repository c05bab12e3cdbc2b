"""The mail engine: a queue in the database, transports, and the sender.

It knows no feature: features queue rows with `enqueue()` (or the generic
`app.email.send_email`) and register send-time handlers with `handler()`.
Nothing starts here at import or in `init_app`: the sender starts in
gunicorn's post_worker_init, on a server's first request, or in the
foreground with `flask mail worker`.
"""

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask, current_app, has_app_context

from app.extensions import db
from app.outbox.models import OutboxMessage, Priority, Status
from app.outbox.queue import backoff, enqueue
from app.outbox.sender import OutboxSender, handler
from app.outbox.transport import choose_transport

__all__ = [
    'OutboxMessage',
    'OutboxSender',
    'Priority',
    'Status',
    'backoff',
    'enqueue',
    'handler',
    'init_app',
]


def _wake_after_commit(session: so.Session) -> None:
    if session.info.pop('outbox_wake', False) and has_app_context():
        sender = current_app.extensions.get('outbox')
        if sender is not None:
            sender.wake()


def init_app(app: Flask) -> None:
    sender = OutboxSender(app, choose_transport(app))
    app.extensions['outbox'] = sender

    @app.before_request
    def _request_started() -> None:
        sender.request_started()
        # A server without gunicorn's hooks (`flask run`): start on first use.
        if app.config['MAIL_SENDER_ENABLED'] and not sender.running:
            sender.start()

    @app.teardown_request
    def _request_ended(_exc) -> None:
        sender.request_ended()

    if not sa.event.contains(db.session, 'after_commit', _wake_after_commit):
        sa.event.listen(db.session, 'after_commit', _wake_after_commit)
