"""Sign-up and recovery emails: the sign-up confirmation, "someone tried
to sign up with your address", and password resets (built at send time).

A sign-up queues one row of one kind whether or not its address has an
account: the sender chooses between the confirmation link and "someone
tried to sign up", so the request does the same work either way.

A reset request only queues the address someone typed, so the request path
does the same work for every address. The sender calls the handlers below:
they look the account up, throttle, and build the email with a fresh link
at each attempt; the link is never stored.
"""

from flask import current_app
from flask_mail import Message

from app import security_log
from app.email import build_message
from app.extensions import db
from app.i18n import lazy_gettext as _l
from app.i18n import recipient_language
from app.models import User
from app.outbox import OutboxMessage, Priority, enqueue, handler
from app.outbox.queue import rewrite
from app.security import audit, mask_email
from app.signups import PendingSignup
from app.validators import email_taken

RESET_REQUEST = 'password_reset'  # holds the typed address
RESET_EMAIL = 'reset_email'  # resolved: holds the account's stored address
CONFIRM_SIGNUP = 'confirm_email'  # an account's address (before 0006)
PENDING_SIGNUP = 'confirm_signup'  # a pending sign-up's address
SIGNUP_TAKEN_SUBJECT = _l(
    '[Microblog] Someone tried to sign up with your email address'
)


def _urgent() -> dict:
    """Reset emails go first, before confirmations too, and never arrive
    after their link would have expired had it been made at the request."""
    expires = current_app.config['RESET_TOKEN_EXPIRES']
    return {'priority': Priority.RESET, 'expires_in': expires}


def request_password_reset(email: str) -> int | None:
    """Queue a reset for whatever account `email` belongs to, if any."""
    # Where it was asked from, for the security log: the account is found
    # only at send time.
    data = {'origin': security_log.where()}
    return enqueue(RESET_REQUEST, [email], data=data, **_urgent())


def queue_reset_email(user: User) -> int | None:
    """A reset email to the account's stored address (no throttle: for a
    flow that has already proved who asks, like undoing an email change)."""
    return enqueue(RESET_EMAIL, [user.email], **_urgent())


def reset_message(user: User) -> Message:
    """A fresh reset email for `user`, with a link valid from now."""
    token = user.get_reset_password_token(current_app.config['RESET_TOKEN_EXPIRES'])
    return build_message(
        _l('[Microblog] Reset Your Password'),
        user.email,
        'reset_password',
        user=user,
        token=token,
    )


@handler(RESET_REQUEST)
def resolve_reset_request(row: OutboxMessage) -> Message | None:
    """First attempt: find the account and take its throttle slot, once."""
    user = User.by_email(row.recipients)
    if user is None or user.deleted_at:  # scheduled for deletion: as unknown
        audit('reset_unknown_address', email=mask_email(row.recipients), job=row.id)
        return None
    if not user.claim_reset_slot(current_app.config['RESET_EMAIL_INTERVAL']):
        audit('reset_throttled', account=user.id, job=row.id)
        return None
    rewrite(row, kind=RESET_EMAIL, recipients=user.email)
    # Committed by the sender with the rewrite.
    origin = row.data.get('origin')
    security_log.record(
        'reset_email_queued', user, private={'job': row.id}, origin=origin
    )
    return reset_message(user)


@handler(RESET_EMAIL)
def build_reset_email(row: OutboxMessage) -> Message | None:
    """A retry: the account must still have the address it had."""
    user = User.by_email(row.recipients)
    if user is None or user.deleted_at:
        audit('reset_account_changed', job=row.id)
        return None
    return reset_message(user)


def confirmation_urgency() -> dict:
    """Confirmations go early and never arrive after their link's lifetime."""
    expires = current_app.config['CONFIRM_TOKEN_EXPIRES']
    return {'priority': Priority.URGENT, 'expires_in': expires}


def queue_signup_confirmation(user: User) -> int | None:
    data = {'user': user.id}
    return enqueue(CONFIRM_SIGNUP, [user.email], data=data, **confirmation_urgency())


def queue_pending_signup(pending: PendingSignup) -> int | None:
    """The same row for a free and a taken address (see the handler)."""
    data = {'pending': pending.id}
    return enqueue(PENDING_SIGNUP, [pending.email], data=data, **confirmation_urgency())


@handler(PENDING_SIGNUP)
def build_pending_signup_email(row: OutboxMessage) -> Message | None:
    """A confirmation link, or, if the address has an account, "someone
    tried to sign up" to its owner (that sign-up can never be confirmed)."""
    pending = PendingSignup.get_live(row.data.get('pending'))
    if pending is None or pending.email != row.recipients:
        return None  # confirmed, expired or replaced meanwhile
    if email_taken(pending.email):  # an account, or an open undo, holds it
        audit('signup_email_taken', email=mask_email(pending.email), job=row.id)
        # In the language of the account that has the address, if one does.
        owner = User.by_email(pending.email)
        return build_message(
            SIGNUP_TAKEN_SUBJECT,
            pending.email,
            'signup_email_taken',
            language=recipient_language(owner),
        )
    expires = current_app.config['CONFIRM_TOKEN_EXPIRES']
    return build_message(
        _l('[Microblog] Confirm your email address'),
        pending.email,
        'confirm_signup',
        language=recipient_language(pending),
        username=pending.username,
        token=pending.make_token(expires),
        hours=expires // 3600,
    )


def account(row: OutboxMessage) -> User | None:
    """The account a send-time row was queued for, if it still exists and
    is not scheduled for deletion (its restore mail is app.deletion's)."""
    user = db.session.get(User, row.data.get('user'))
    return None if user is None or user.deleted_at else user


def confirmation_message(user: User, to: str, template: str, subject: str, **claims):
    """A confirmation link for `to`, valid CONFIRM_TOKEN_EXPIRES from now."""
    expires = current_app.config['CONFIRM_TOKEN_EXPIRES']
    purpose = 'change_email' if claims else 'confirm_email'
    token = user.make_token(purpose, expires, **claims)
    return build_message(
        subject, to, template, user=user, token=token, hours=expires // 3600
    )


@handler(CONFIRM_SIGNUP)
def build_signup_confirmation(row: OutboxMessage) -> Message | None:
    user = account(row)
    if user is None or user.email_confirmed or user.email != row.recipients:
        return None  # nothing left to confirm at this address
    return confirmation_message(
        user, user.email, 'confirm_email', _l('[Microblog] Confirm your email address')
    )
