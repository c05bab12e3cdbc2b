"""Second-factor helpers for tests: turn the authenticator app on through
the pages and compute codes the way a phone would (pyotp)."""

import re
import time

import pyotp
import sqlalchemy as sa

from app.dbtypes import utcnow
from app.extensions import db
from app.mfa.models import Authenticator
from app.models import User

SECRET = re.compile(r'<code class="[^"]*" id="secret">([A-Z2-7]+)</code>')
CODES = re.compile(r'<li>([a-z0-9]{5}-[a-z0-9]{5})</li>')


def turn_on_authenticator(client) -> tuple[str, list[str]]:
    """(secret, recovery codes): set up through /two_factor/setup, which
    needs a recently proven session."""
    page = client.get('/two_factor/setup').get_data(as_text=True)
    secret = SECRET.search(page)[1]
    response = client.post('/two_factor/setup', data={'code': totp_now(secret)})
    codes = CODES.findall(response.get_data(as_text=True))
    assert len(codes) == 10, response.get_data(as_text=True)[:2000]
    return secret, codes


def totp_now(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def fresh_code(app, secret: str, username: str = 'susan') -> str:
    """A code the server has not seen: from a later time step than the last
    one used (one step ahead is allowed as drift), waiting if need be."""
    totp = pyotp.TOTP(secret)
    with app.app_context():
        user = User.by_username(username)
        last = db.session.scalar(
            sa.select(Authenticator.last_step).where(Authenticator.user_id == user.id)
        )
    while True:
        now = totp.timecode(utcnow())
        step = max(now, (last or 0) + 1)
        if step <= now + 1:
            return totp.generate_otp(step)
        time.sleep(1)
