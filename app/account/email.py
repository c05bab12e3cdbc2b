"""The account emails: the new address's confirmation link (built at send
time, so its token is never stored) and the email-changed notice with its
undo link. Sign-up's confirmation lives with sign-up, in app/auth/email.py.

A change to an address another account has is queued like any other; at
send time that address's owner gets "someone tried to use your address"
instead of a link, so the change page answers the same either way."""

from flask_mail import Message

from app import security_log
from app.auth.email import account, confirmation_message, confirmation_urgency
from app.email import build_message
from app.models import User
from app.outbox import OutboxMessage, enqueue, handler
from app.security import audit

CONFIRM_CHANGE = 'change_email'
EMAIL_CHANGED = 'email_changed'
REVERT_EXPIRES = 7 * 24 * 3600


def queue_email_change(user: User, new_email: str) -> OutboxMessage:
    data = {'user': user.id, 'email': new_email}
    return enqueue(CONFIRM_CHANGE, [new_email], data=data, **confirmation_urgency())


def queue_email_changed_notice(
    user: User, old: str, new: str, context: dict
) -> OutboxMessage:
    """To the old address, with when/where/browser and the undo link."""
    data = {'user': user.id, 'old': old, 'new': new, **context}
    return enqueue(EMAIL_CHANGED, [old], data=data)


@handler(CONFIRM_CHANGE)
def build_change_confirmation(row: OutboxMessage) -> Message | None:
    user = account(row)
    new_email = row.data.get('email')
    if user is None or not new_email:
        return None
    owner = User.by_email(new_email)
    if owner is not None and owner.id != user.id:
        audit('email_change_address_taken', account=user.id, job=row.id)
        return build_message(
            '[Microblog] Someone tried to use your email address',
            new_email,
            'address_in_use',
        )
    return confirmation_message(
        user,
        new_email,
        'confirm_new_email',
        '[Microblog] Confirm your new email address',
        email=new_email,
    )


@handler(EMAIL_CHANGED)
def build_email_changed_notice(row: OutboxMessage) -> Message | None:
    user = account(row)
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
        log_url=security_log.event_url(row.data.get('log')),
        **{k: row.data.get(k) for k in ('when', 'address', 'browser')},
    )
