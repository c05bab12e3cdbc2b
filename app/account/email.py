"""The account emails: confirmation links (built at send time, so their
tokens are never stored), the email-changed notice with its undo link, and
the "someone tried to sign up with your address" notice."""

from flask import current_app
from flask_mail import Message

from app.email import build_message, send_rendered
from app.extensions import db
from app.models import User
from app.outbox import OutboxMessage, Priority, enqueue, handler

CONFIRM_SIGNUP = 'confirm_email'
CONFIRM_CHANGE = 'change_email'
EMAIL_CHANGED = 'email_changed'
REVERT_EXPIRES = 7 * 24 * 3600


def _urgent() -> dict:
    expires = current_app.config['CONFIRM_TOKEN_EXPIRES']
    return {'priority': Priority.URGENT, 'expires_in': expires}


def queue_signup_confirmation(user: User) -> OutboxMessage:
    data = {'user': user.id}
    return enqueue(CONFIRM_SIGNUP, [user.email], data=data, **_urgent())


def queue_email_change(user: User, new_email: str) -> OutboxMessage:
    data = {'user': user.id, 'email': new_email}
    return enqueue(CONFIRM_CHANGE, [new_email], data=data, **_urgent())


def queue_email_changed_notice(
    user: User, old: str, new: str, context: dict
) -> OutboxMessage:
    """To the old address, with when/where/browser and the undo link."""
    data = {'user': user.id, 'old': old, 'new': new, **context}
    return enqueue(EMAIL_CHANGED, [old], data=data)


def send_signup_email_taken(address: str) -> OutboxMessage:
    """Registration says the same for a taken address; its owner hears why."""
    return send_rendered(
        '[Microblog] Someone tried to sign up with your email address',
        address,
        'signup_email_taken',
    )


def _account(row: OutboxMessage) -> User | None:
    return db.session.get(User, row.data.get('user'))


def _confirmation(user: User, to: str, template: str, subject: str, **claims):
    """A confirmation link for `to`, valid CONFIRM_TOKEN_EXPIRES from now."""
    expires = current_app.config['CONFIRM_TOKEN_EXPIRES']
    purpose = 'change_email' if claims else 'confirm_email'
    token = user.make_token(purpose, expires, **claims)
    return build_message(
        subject, to, template, user=user, token=token, hours=expires // 3600
    )


@handler(CONFIRM_SIGNUP)
def build_signup_confirmation(row: OutboxMessage) -> Message | None:
    user = _account(row)
    if user is None or user.email_confirmed or user.email != row.recipients:
        return None  # nothing left to confirm at this address
    return _confirmation(
        user, user.email, 'confirm_email', '[Microblog] Confirm your email address'
    )


@handler(CONFIRM_CHANGE)
def build_change_confirmation(row: OutboxMessage) -> Message | None:
    user = _account(row)
    new_email = row.data.get('email')
    if user is None or not new_email:
        return None
    return _confirmation(
        user,
        new_email,
        'confirm_new_email',
        '[Microblog] Confirm your new email address',
        email=new_email,
    )


@handler(EMAIL_CHANGED)
def build_email_changed_notice(row: OutboxMessage) -> Message | None:
    user = _account(row)
    old, new = row.data.get('old'), row.data.get('new')
    if user is None or not old or not new:
        return None
    token = user.make_token('revert_email', REVERT_EXPIRES, old=old, new=new)
    return build_message(
        '[Microblog] Your email address was changed',
        old,
        'email_changed',
        user=user,
        token=token,
        new_email=new,
        **{k: row.data.get(k) for k in ('when', 'address', 'browser')},
    )
