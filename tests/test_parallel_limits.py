"""Limits that hold under parallel requests (issue 21, point 2): gunicorn
with 2 workers x 8 threads, counting in one Redis. Flask-Limiter's
deduct_when (test first, count after) let 23 of 40 simultaneous failed
sign-ins through a 10/minute limit; counted first, at most 10 pass."""

import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from app import db
from app.models import User
from app.testing import PASSWORD

pytestmark = pytest.mark.slow
REDIS = 'redis://127.0.0.1:6379/4'
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'name="csrf_token" value="([^"]+)"')  # fmt: skip


def redis_or_skip() -> None:
    redis = pytest.importorskip('redis')
    try:
        redis.Redis.from_url(REDIS, socket_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip('no Redis server on 127.0.0.1:6379')


class Browser:
    """One cookie jar; follows no redirects, so 302s are seen as such."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), self.NoRedirect
        )

    def request(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        try:
            with self.opener.open(self.base + path, body, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def token(self, path: str) -> str:
        status, page = self.request(path)
        assert status == 200, status
        match = CSRF.search(page)
        return match[1] or match[2]

    def sign_in(self) -> None:
        token = self.token('/login')
        form = {'csrf_token': token, 'username': 'susan', 'password': PASSWORD}
        assert self.request('/login', form)[0] == 302


def at_once(forms: list[tuple[Browser, str, dict]]) -> list[tuple[int, str]]:
    """Send every POST at the same instant, one thread each."""
    barrier = threading.Barrier(len(forms))
    results = [None] * len(forms)

    def send(i: int, browser: Browser, path: str, data: dict) -> None:
        barrier.wait()
        results[i] = browser.request(path, data)

    threads = [threading.Thread(target=send, args=(i, *f)) for i, f in enumerate(forms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def serve(make_app, app_process, **env):
    redis_or_skip()
    app = make_app(MAIL_SENDER_ENABLED=False)
    with app.app_context():
        user = User(username='susan', email='susan@example.com', email_confirmed=True)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    proc = app_process(
        app.config['SQLALCHEMY_DATABASE_URI'],
        workers=2,
        GUNICORN_CMD_ARGS='--threads 8',
        RATELIMIT_STORAGE_URI=REDIS,
        RATELIMIT_KEY_PREFIX=f'test-{uuid.uuid4().hex}',
        MAIL_SENDER_ENABLED='false',
        GUNICORN_ACCESS_LOG='',
        **env,
    ).start()
    return f'http://127.0.0.1:{proc.port}'


def test_simultaneous_failed_sign_ins_never_pass_the_limit(make_app, app_process):
    base = serve(make_app, app_process, LOGIN_RATE_LIMIT='10/minute',
                 LOGIN_ACCOUNT_LIMIT='1000/minute')  # fmt: skip
    browsers = [Browser(base) for _ in range(40)]
    forms = [
        (
            b,
            '/login',
            {
                'csrf_token': b.token('/login'),
                'username': 'susan',
                'password': 'a wrong guess',
            },
        )  # fmt: skip
        for b in browsers
    ]
    statuses = [status for status, _ in at_once(forms)]
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == 10  # answered "Invalid username or password"


def test_simultaneous_sign_ins_for_one_account_never_pass_its_limit(
    make_app, app_process
):
    base = serve(make_app, app_process, LOGIN_RATE_LIMIT='1000/minute',
                 LOGIN_ACCOUNT_LIMIT='10/minute')  # fmt: skip
    browsers = [Browser(base) for _ in range(40)]
    forms = [
        (
            b,
            '/login',
            {
                'csrf_token': b.token('/login'),
                'username': 'SUSAN',
                'password': 'a wrong guess',
            },
        )  # fmt: skip
        for b in browsers
    ]
    statuses = [status for status, _ in at_once(forms)]
    assert statuses.count(200) == 10 and statuses.count(429) == 30


def test_simultaneous_password_guesses_never_pass_the_budget(make_app, app_process):
    """40 stolen sessions guess the current password at the same instant."""
    base = serve(
        make_app,
        app_process,
        PASSWORD_GUESS_BUDGET='5/15minutes',
        LOGIN_RATE_LIMIT='1000/minute',
        LOGIN_ACCOUNT_LIMIT='1000/minute',
        REAUTH_WINDOW='0',  # else a fresh sign-in is a proof: nothing to guess
    )
    browsers = [Browser(base) for _ in range(40)]
    for browser in browsers:
        browser.sign_in()
    forms = [
        (
            b,
            '/sessions',
            {'csrf_token': b.token('/sessions'), 'current_password': f'guess {i}'},
        )  # fmt: skip
        for i, b in enumerate(browsers)
    ]
    results = at_once(forms)
    answered = [page for status, page in results if status == 200]
    assert len(answered) == 4  # the fifth wrong guess spends the budget
    assert all('That is not your current password.' in page for page in answered)
    assert [status for status, _ in results].count(302) == 36  # signed out
    assert sum(b.request('/index')[0] == 200 for b in browsers) == 4
