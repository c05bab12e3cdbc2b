"""Security notices: "your password was changed", "new sign-in from a
browser not seen before" and "too many wrong passwords". Each says when
(UTC), from roughly where and with which browser, and carries a signed
"This wasn't me" link (/not_me/<token>, 7 days) made when it is sent."""

from flask import request
from flask_mail import Message

from app.dbtypes import utcnow
from app.email import build_message
from app.extensions import db
from app.models import User
from app.outbox import OutboxMessage, enqueue, handler
from app.sessions import approximate_address, describe_agent

NOTICE = 'security_notice'
NOT_ME_EXPIRES = 7 * 24 * 3600
SUBJECTS = {
    'password_changed': '[Microblog] Your password was changed',
    'new_sign_in': '[Microblog] New sign-in from a browser not seen before',
    'password_guesses': '[Microblog] Too many wrong passwords on your account',
}


def request_context() -> dict:
    """When, from roughly where and with which browser: for a notice."""
    browser, system = describe_agent(request.user_agent.string)
    return {
        'when': utcnow().strftime('%A %-d %B %Y, %H:%M UTC'),
        'address': approximate_address(request.remote_addr or ''),
        'browser': f'{browser} on {system}',
    }


def queue_notice(user: User, event: str) -> OutboxMessage | None:
    """Queue a notice to the account's address, if that address is proven:
    nobody can have notices sent to an address they merely typed. Each
    event has its own mail budget (notice_<event>), so a flood of one kind
    cannot use up the budget of another."""
    if not user.email_confirmed:
        return None
    data = {'user': user.id, 'event': event, **request_context()}
    return enqueue(NOTICE, [user.email], data=data, budget=f'notice_{event}')


@handler(NOTICE)
def build_notice(row: OutboxMessage) -> Message | None:
    data = row.data
    user = db.session.get(User, data.get('user'))
    if user is None or data.get('event') not in SUBJECTS:
        return None
    token = user.make_token('not_me', NOT_ME_EXPIRES)
    return build_message(
        SUBJECTS[data['event']],
        row.recipients,
        f'notice_{data["event"]}',
        user=user,
        token=token,
        **{k: data.get(k) for k in ('when', 'address', 'browser')},
    )
