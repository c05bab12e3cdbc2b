"""The account emails: reset requests (built at send time) and notices.

A reset request only queues the address someone typed, so the request path
does the same work for every address. The sender calls the handlers below:
they look the account up, throttle, and build the email with a fresh link
at each attempt; the link is never stored.
"""

from flask import current_app, render_template
from flask_mail import Message

from app.models import User
from app.outbox import OutboxMessage, Priority, enqueue, handler
from app.outbox.queue import rewrite
from app.security import audit, mask_email

RESET_REQUEST = 'password_reset'  # holds the typed address
RESET_EMAIL = 'reset_email'  # resolved: holds the account's stored address


def _urgent() -> dict:
    """Reset emails go first, before confirmations too, and never arrive
    after their link would have expired had it been made at the request."""
    expires = current_app.config['RESET_TOKEN_EXPIRES']
    return {'priority': Priority.RESET, 'expires_in': expires}


def request_password_reset(email: str) -> OutboxMessage:
    """Queue a reset for whatever account `email` belongs to, if any."""
    return enqueue(RESET_REQUEST, [email], **_urgent())


def queue_reset_email(user: User) -> OutboxMessage:
    """A reset email to the account's stored address (no throttle: for a
    flow that has already proved who asks, like undoing an email change)."""
    return enqueue(RESET_EMAIL, [user.email], **_urgent())


def reset_message(user: User) -> Message:
    """A fresh reset email for `user`, with a link valid from now."""
    token = user.get_reset_password_token(current_app.config['RESET_TOKEN_EXPIRES'])
    return Message(
        subject='[Microblog] Reset Your Password',
        sender=current_app.config['MAIL_DEFAULT_SENDER'],
        recipients=[user.email],
        body=render_template('email/reset_password.txt', user=user, token=token),
        html=render_template('email/reset_password.html', user=user, token=token),
    )


@handler(RESET_REQUEST)
def resolve_reset_request(row: OutboxMessage) -> Message | None:
    """First attempt: find the account and take its throttle slot, once."""
    user = User.by_email(row.recipients)
    if user is None:
        audit('reset_unknown_address', email=mask_email(row.recipients), job=row.id)
        return None
    if not user.claim_reset_slot(current_app.config['RESET_EMAIL_INTERVAL']):
        audit('reset_throttled', account=user.id, job=row.id)
        return None
    rewrite(row, kind=RESET_EMAIL, recipients=user.email)
    audit('reset_email_queued', account=user.id, job=row.id)
    return reset_message(user)


@handler(RESET_EMAIL)
def build_reset_email(row: OutboxMessage) -> Message | None:
    """A retry: the account must still have the address it had."""
    user = User.by_email(row.recipients)
    if user is None:
        audit('reset_account_changed', job=row.id)
        return None
    return reset_message(user)
