"""Security notices: "your password was changed", "new sign-in from a
browser not seen before", "too many wrong passwords" and every change of a
second factor (added, removed, recovery codes renewed or used, removed by
an operator). Each says when
(UTC), from roughly where and with which browser, and carries a signed
"This wasn't me" link (/not_me/<token>, 7 days) made when it is sent."""

from flask import has_request_context, request
from flask_mail import Message

from app import security_log
from app.dbtypes import utcnow
from app.email import build_message
from app.extensions import db
from app.i18n import in_language, recipient_language
from app.i18n import lazy_gettext as _l
from app.models import User
from app.outbox import OutboxMessage, enqueue, handler
from app.sessions import approximate_address, describe_agent

NOTICE = 'security_notice'
NOT_ME_EXPIRES = 7 * 24 * 3600
CONTEXT = ('when', 'address', 'browser', 'system')  # request_context's keys
SUBJECTS = {
    'password_changed': _l('[Microblog] Your password was changed'),
    'new_sign_in': _l('[Microblog] New sign-in from a browser not seen before'),
    'password_guesses': _l('[Microblog] Too many wrong passwords on your account'),
    'authenticator_added': _l('[Microblog] An authenticator app was added'),
    'authenticator_removed': _l('[Microblog] The authenticator app was removed'),
    'recovery_codes_regenerated': _l('[Microblog] New recovery codes were made'),
    'recovery_code_used': _l('[Microblog] A recovery code was used to sign in'),
    'two_factor_reset': _l('[Microblog] Your second factor was removed by an operator'),
    'passkey_added': _l('[Microblog] A passkey was added to your account'),
    'passkey_removed': _l('[Microblog] A passkey was removed from your account'),
    'language_changed': _l('[Microblog] The language of your account was changed'),
}
# Second-factor (and language) changes share one template, each with its
# sentence.
FACTOR_EVENTS = {
    'authenticator_added': _l(
        'An authenticator app was added to your Microblog '
        'account: signing in now asks for a code from it.'
    ),
    'authenticator_removed': _l(
        'The authenticator app was removed from your '
        'Microblog account: signing in now takes only the password.'
    ),
    'recovery_codes_regenerated': _l(
        'New recovery codes were made for your '
        'Microblog account; the earlier ones no longer work.'
    ),
    'recovery_code_used': _l(
        'A recovery code was used to sign in to your '
        'Microblog account. %(remaining)s of 10 are left.'
    ),
    'two_factor_reset': _l(
        'An operator removed the second factor and the '
        'passkeys of your Microblog account, at your request after checking who '
        'you are: signing in now takes only the password.'
    ),
    'passkey_added': _l(
        'A passkey named "%(name)s" was added to your Microblog '
        'account: it can sign you in without your password.'
    ),
    'passkey_removed': _l(
        'The passkey named "%(name)s" was removed from your '
        'Microblog account: it no longer signs you in.'
    ),
    # Told in the language it was changed from (see build_notice).
    'language_changed': _l(
        'The language of your Microblog account was changed to %(name)s: '
        'its pages and emails are now in it.'
    ),
}


def request_context() -> dict:
    """When, from roughly where and with which browser: for a notice, put
    into words when it is sent, in its reader's language (from the command
    line: an operator at the server, both None)."""
    when = utcnow().isoformat()
    if not has_request_context():
        return {'when': when, 'address': None, 'browser': None, 'system': None}
    browser, system = describe_agent(request.user_agent.string)
    return {
        'when': when,
        'address': approximate_address(request.remote_addr or ''),
        'browser': browser,
        'system': system,
    }


def queue_notice(user: User, event: str, **extra) -> int | None:
    """Queue a notice to the account's address, if that address is proven:
    nobody can have notices sent to an address they merely typed. Each
    event has its own mail budget (notice_<event>), so a flood of one kind
    cannot use up the budget of another."""
    if not user.email_confirmed:
        return None
    data = {'user': user.id, 'event': event, **request_context(), **extra}
    return enqueue(NOTICE, [user.email], data=data, budget=f'notice_{event}')


@handler(NOTICE)
def build_notice(row: OutboxMessage) -> Message | None:
    data = row.data
    user = db.session.get(User, data.get('user'))
    if user is None or user.deleted_at or data.get('event') not in SUBJECTS:
        return None
    token = user.make_token('not_me', NOT_ME_EXPIRES)
    event = data['event']
    # A change of language is told in the language it replaced: whoever
    # changed it cannot make the owner's alarm one they cannot read.
    language = data.get('language') or recipient_language(user)
    with in_language(language):
        values = {'remaining': data.get('remaining'), 'name': data.get('name')}
        message = str(FACTOR_EVENTS.get(event, '')) % values
    return build_message(
        SUBJECTS[event],
        row.recipients,
        'notice_factor' if event in FACTOR_EVENTS else f'notice_{event}',
        language=language,
        user=user,
        token=token,
        message=message,
        log_url=security_log.event_url(data.get('log')),
        **{k: data.get(k) for k in CONTEXT},
    )
