"""Filling and reading the outbox, waiting for it, and a second SMTP server
with settings of its own."""

import time

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from app import db
from app.email import send_email
from app.outbox import OutboxMessage
from app.testing.smtp import SinkHandler, free_port


def queue_emails(app, n: int, to: str = 'reader@example.com') -> list[int]:
    with app.app_context():
        ids = [
            send_email(f'Message {i}', None, [to], f'Body {i}', f'<p>Body {i}</p>')
            for i in range(n)
        ]
        db.session.commit()
        return ids


def outbox_rows(app) -> list[OutboxMessage]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(OutboxMessage).order_by('id')))
        db.session.expunge_all()
        return rows


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError('condition not met in time')


def outbox_ids(messages) -> list[int]:
    return sorted(int(m['X-Microblog-Outbox-Id']) for m in messages)


def smtp_server(**params):
    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname='127.0.0.1', port=port, **params)
    controller.start()
    return controller, handler, port
