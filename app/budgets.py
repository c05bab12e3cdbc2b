"""Budgets: counters every worker and server share, in the rate-limit store
(Flask-Limiter's storage: Redis in production).

A try is counted first, with one atomic increment per window, and given
back afterwards if it turned out free (a right password, a sign-in that
worked). Flask-Limiter's `deduct_when` does the opposite (tests before the
request, counts after it), so 40 simultaneous failed sign-ins against a
10/minute limit let 23 through (20 in tests/test_parallel_limits.py);
counted first, at most 10 pass.

Used for the per-client limits of the password forms (`limited`), the
per-account sign-in and current-password budgets (`take`), and the mail
budgets (`mail_allowed`, called by every enqueue). Budgets are on when
RATELIMIT_ENABLED is; with the store down they count in this process, as
Flask-Limiter does.
"""

import hashlib
from dataclasses import dataclass, field
from functools import wraps

from flask import abort, current_app, has_request_context, make_response, request
from flask_login import current_user
from limits import RateLimitItem, parse_many

from app.extensions import limiter
from app.security import audit, mask_email


@dataclass
class Take:
    """What one `take` counted: `refund()` gives it back."""

    counted: list[tuple[RateLimitItem, str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Within every limit, this try included."""
        return all(count <= item.amount for item, _, count in self.counted)

    @property
    def spent_now(self) -> bool:
        """This try used the last unit of a limit (once per window)."""
        return any(count == item.amount for item, _, count in self.counted)

    def refund(self) -> None:
        for item, key, _ in self.counted:
            _incr(key, item, -1)
        self.counted = []


def _storage():
    return limiter.limiter.storage


def _incr(key: str, item: RateLimitItem, amount: int) -> int:
    try:
        return _storage().incr(key, item.get_expiry(), amount=amount)
    except Exception:
        # As Flask-Limiter does (and with its message): count in this
        # process while the store is down; it checks for recovery itself.
        if not limiter._in_memory_fallback_enabled or limiter._storage_dead:
            current_app.logger.exception('budget store failed: not counted')
            return 0
        limiter.logger.warning(
            'Rate limit storage unreachable - falling back to in-memory storage'
        )
        limiter._storage_dead = True
        return _storage().incr(key, item.get_expiry(), amount=amount)


def enabled() -> bool:
    return bool(current_app.config.get('RATELIMIT_ENABLED')) and limiter.enabled


def count(limits: str | None, *identity: str) -> Take:
    """Count one try against `limits` (e.g. '5/15minutes;20/day') for
    `identity`; an empty Take when budgets are off or `limits` is 'none'."""
    taken = Take()
    if not enabled() or not limits or limits == 'none':
        return taken
    prefix = current_app.config.get('RATELIMIT_KEY_PREFIX') or 'microblog'
    for item in parse_many(limits):
        key = item.key_for(prefix, 'budget', *identity)
        taken.counted.append((item, key, _incr(key, item, 1)))
    return taken


def take(setting: str, *identity: str) -> Take:
    """Count one try against the limits config[setting] names."""
    return count(current_app.config.get(setting), setting, *identity)


def client() -> str:
    return request.remote_addr or ''


def succeeded(response) -> bool:
    """A form that worked answers with a redirect."""
    return response.status_code == 302


def limited(setting: str, refund_when=succeeded):
    """Per-client limit on a view's POSTs: counted first, refunded when the
    answer shows success; 429 past the limit."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if request.method != 'POST':
                return view(*args, **kwargs)
            taken = take(setting, request.endpoint or '', client())
            if not taken.ok:
                abort(429)
            response = make_response(view(*args, **kwargs))
            if refund_when(response):
                taken.refund()
            return response

        return wrapper

    return decorator


def hashed(address: str) -> str:
    """Store keys never hold an address in clear."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:32]


def mail_budget(name: str) -> str | None:
    """The budget of a kind of email: MAIL_BUDGETS[name], else MAIL_BUDGET."""
    value = current_app.config['MAIL_BUDGETS'].get(name)
    value = current_app.config['MAIL_BUDGET'] if value is None else value
    return None if value in ('', 'none') else value


def mail_allowed(name: str, recipients: list[str], account: int | None) -> bool:
    """May this request cause one more email of budget `name`: within the
    budget per recipient address, per account and per client? Outside a
    request (the CLI, the sender) nothing is counted. A refusal is logged,
    never shown: the caller answers as if the email went."""
    budget = mail_budget(name)
    if budget is None or not has_request_context() or not enabled():
        return True
    if account is None and current_user and current_user.is_authenticated:
        account = current_user.id
    tries = [(current_app.config['MAIL_CLIENT_BUDGET'], 'client', client())]
    if account is not None:
        tries.append((budget, 'account', str(account)))
    tries += [(budget, 'to', hashed(address)) for address in recipients]
    for limits, by, value in tries:
        if not count(limits, 'mail', name, by, value).ok:
            masked = ', '.join(mask_email(address) for address in recipients)
            audit('mail_budget_reached', kind=name, by=by, account=account,
                  email=masked)  # fmt: skip
            return False
    return True
