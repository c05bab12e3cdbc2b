"""The account emails: the new address's confirmation link, the previous
address's consent to a change while an undo is open, the email-changed
notice with its undo and "This was me" links, and the notice that an undo
replaced an address. Links are made at send time, so no token is stored.
Sign-up's confirmation lives with sign-up, in app/auth/email.py.

A change to an address another account has is queued like any other; at
send time that address's owner gets "someone tried to use your address"
instead of a link, so the change page answers the same either way."""

from flask import current_app
from flask_mail import Message

from app import security_log
from app.auth.email import account, confirmation_message, confirmation_urgency
from app.dbtypes import utcnow
from app.email import build_message
from app.email_undo import EmailUndo
from app.extensions import db
from app.i18n import lazy_gettext as _l
from app.i18n import recipient_language
from app.models import User
from app.notices import CONTEXT
from app.outbox import OutboxMessage, enqueue, handler
from app.security import audit

CONFIRM_CHANGE = 'change_email'
APPROVE_CHANGE = 'approve_email_change'
EMAIL_CHANGED = 'email_changed'
EMAIL_RESTORED = 'email_restored'


def queue_email_change(
    user: User, new_email: str, approved: bool = False
) -> int | None:
    """`approved`: the address of the account's open undo consented."""
    data = {'user': user.id, 'email': new_email, 'approved': approved}
    return enqueue(CONFIRM_CHANGE, [new_email], data=data, **confirmation_urgency())


def queue_change_approval(user: User, gate: EmailUndo, new_email: str):
    """While an undo is open, a change starts with its address's consent."""
    data = {'user': user.id, 'email': new_email}
    return enqueue(
        APPROVE_CHANGE, [gate.old_email], data=data, **confirmation_urgency()
    )


def queue_email_changed_notice(
    user: User, undo: EmailUndo, context: dict
) -> int | None:
    """To the old address, with when/where/browser, undo and "This was me"."""
    data = {'user': user.id, 'undo': undo.id, 'new': undo.new_email, **context}
    return enqueue(EMAIL_CHANGED, [undo.old_email], data=data)


def queue_email_restored_notice(user: User, replaced: str, context: dict) -> int | None:
    """To the address an undo replaced: what happened (it carries no link)."""
    data = {'user': user.id, 'replaced': replaced, **context}
    return enqueue(EMAIL_RESTORED, [replaced], data=data)


@handler(EMAIL_RESTORED)
def build_email_restored_notice(row: OutboxMessage) -> Message | None:
    user = account(row)
    if user is None:
        return None
    return build_message(
        _l('[Microblog] Your previous email address was restored'),
        row.recipients,
        'email_restored',
        user=user,
        restored=user.email,
        replaced=row.data.get('replaced'),
        **{k: row.data.get(k) for k in CONTEXT},
    )


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
            _l('[Microblog] Someone tried to use your email address'),
            new_email,
            'address_in_use',
            language=recipient_language(owner),
        )
    claims = {'email': new_email}
    if row.data.get('approved'):
        claims['approved'] = True
    return confirmation_message(
        user,
        new_email,
        'confirm_new_email',
        _l('[Microblog] Confirm your new email address'),
        **claims,
    )


@handler(APPROVE_CHANGE)
def build_change_approval(row: OutboxMessage) -> Message | None:
    user = account(row)
    new_email = row.data.get('email')
    if user is None or not new_email:
        return None
    expires = current_app.config['CONFIRM_TOKEN_EXPIRES']
    token = user.make_token('approve_email', expires, email=new_email)
    return build_message(
        _l('[Microblog] Allow a change of email address?'),
        row.recipients,
        'approve_email_change',
        user=user,
        token=token,
        new_email=new_email,
        hours=expires // 3600,
    )


@handler(EMAIL_CHANGED)
def build_email_changed_notice(row: OutboxMessage) -> Message | None:
    user = account(row)
    undo = db.session.get(EmailUndo, row.data.get('undo') or 0)
    if user is None or undo is None or undo.user_id != user.id:
        return None
    # The links live as long as the undo is open.
    expires = max(1, int((undo.expires_at - utcnow()).total_seconds()))
    return build_message(
        _l('[Microblog] Your email address was changed'),
        undo.old_email,
        'email_changed',
        user=user,
        token=user.make_token('revert_email', expires, undo=undo.id),
        keep_token=user.make_token('keep_email', expires, undo=undo.id),
        new_email=undo.new_email,
        log_url=security_log.event_url(row.data.get('log')),
        **{k: row.data.get(k) for k in CONTEXT},
    )
