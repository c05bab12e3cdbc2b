"""Checking a code: every wrong one counts against the account's one
guess budget (PASSWORD_GUESS_BUDGET, shared with the password forms:
app.guesses), counted first and given back when right."""

from app import budgets, guesses, security_log
from app.i18n import lazy_gettext as _l
from app.mfa.models import Authenticator, RecoveryCode
from app.models import User
from app.notices import queue_notice

WRONG_CODE = _l(
    'That code is not right. Check the time on your phone, or use a new one.'
)
TOO_MANY = _l('Too many wrong codes. Sign in again in a few minutes.')


def right_code(user: User, code: str, recovery: bool = True) -> str | None:
    """'authenticator' or 'recovery' for a right code (now used), else None.
    A recovery code used sends a notice saying how many are left."""
    authenticator = Authenticator.of(user)
    if authenticator and authenticator.verify(code):
        return 'authenticator'
    if recovery and RecoveryCode.use(user, code):
        left = RecoveryCode.remaining(user)
        log = security_log.record('recovery_code_used', user, remaining=left)
        queue_notice(user, 'recovery_code_used', remaining=left, log=log)
        return 'recovery'
    return None


def checked_code(user: User, code: str, recovery: bool = True):
    """(kind, spent): the kind of a right code, or None; `spent` is True
    when the budget is used up (this try included): the caller ends the
    attempt. The owner hears of it once per window."""
    taken = budgets.take('PASSWORD_GUESS_BUDGET', str(user.id))
    if taken.ok:
        kind = right_code(user, code, recovery)
        if kind:
            taken.refund()
            return kind, False
        if not taken.spent_now:
            return None, False
    guesses.budget_spent(user, taken.spent_now, by='code')
    return None, True


def end_guessing_session() -> None:
    """Past the budget in a signed-in session (app.guesses)."""
    guesses.end_guessing_session(TOO_MANY)
