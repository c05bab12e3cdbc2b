"""The second-factor pages in a real browser (issue 24): the story of
turning the authenticator app on and signing in with a code computed by
pyotp, and axe on every new page in light and dark, at 390 and 1280 px."""

import os
import re

import pyotp
import pytest
import sqlalchemy as sa

from app import db
from app.dbtypes import utcnow
from app.mfa.models import Authenticator
from app.models import User
from app.testing import ARTIFACTS, PASSWORD, LiveServer, PageWatch, free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AXE = os.path.join(ROOT, 'node_modules', 'axe-core', 'axe.min.js')
AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']

pytestmark = pytest.mark.browser


@pytest.fixture
def server(make_app):
    """The app in a thread, with CSRF on and a 10-minute proof window."""
    port = free_port()
    app = make_app(
        SERVER_NAME=f'127.0.0.1:{port}',
        PREFERRED_URL_SCHEME='http',
        WTF_CSRF_ENABLED=True,
        GRAVATAR=False,
        REAUTH_WINDOW=600,
    )
    with app.app_context():
        user = User(username='alice', email='alice@example.com', email_confirmed=True)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    live = LiveServer(app, port).start()
    yield live
    live.stop()


def new_page(browser, server, **options):
    context = browser.new_context(base_url=server.url, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.watch = PageWatch(page, server.url)
    return page


def check_page(page) -> None:
    """No console errors, nothing from other hosts, a label on every field."""
    page.wait_for_load_state('load')
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select')]
            .filter(el => !['hidden', 'submit', 'button'].includes(el.type))
            .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
            .map(el => el.name)"""
    )
    assert unlabelled == [], f'fields without a label on {page.url}'
    assert page.watch.console_errors == [], page.url
    assert page.watch.foreign_requests == [], page.url


def sign_in(page, password: str = PASSWORD) -> None:
    page.goto('/login')
    page.fill('input[name=username]', 'alice')
    page.fill('input[name=password]', password)
    page.click('input[type=submit]')


def code_for(server, secret: str) -> str:
    """A code the server has not used yet (the next step is allowed)."""
    totp = pyotp.TOTP(secret)
    with server.app.app_context():
        last = db.session.scalar(sa.select(Authenticator.last_step))
    now = totp.timecode(utcnow())
    return totp.generate_otp(max(now, (last or 0) + 1))


def set_up_authenticator(page, server) -> tuple[str, list[str]]:
    page.goto('/two_factor/setup')
    secret = page.inner_text('#secret')
    uri = page.locator('details code').text_content()
    assert pyotp.parse_uri(uri).secret == secret
    page.fill('input[name=code]', pyotp.TOTP(secret).now())
    page.click('input[value="Turn on"]')
    page.wait_for_selector('text=The authenticator app is on.')
    codes = page.locator('#recovery-codes li').all_inner_texts()
    return secret, codes


def test_turn_on_the_authenticator_and_sign_in_with_a_code(browser, server, smtp):
    page = new_page(browser, server)
    sign_in(page)
    page.wait_for_url('**/index')
    page.click('nav .dropdown-toggle')
    page.click('nav .dropdown-menu >> text=Settings')
    page.click('text=Two-factor sign-in')
    page.wait_for_url('**/two_factor')
    check_page(page)
    page.click('text=Set up an authenticator app')
    page.wait_for_url('**/two_factor/setup')
    assert page.locator('.qr-code svg').count() == 1
    check_page(page)
    secret, codes = set_up_authenticator(page, server)
    assert len(codes) == 10 and all(re.fullmatch(r'[a-z0-9]{5}-[a-z0-9]{5}', c)
                                    for c in codes)  # fmt: skip
    with page.expect_download() as download:
        page.click('text=Download as text')
    path = download.value.path()
    with open(path, encoding='utf-8') as f:
        assert f.read().split('\n\n')[1].split() == codes
    check_page(page)
    smtp.take('An authenticator app was added', 'alice@example.com')
    page.click('text=Done')
    page.wait_for_selector('text=10 of 10 recovery codes left')
    page.click('nav .dropdown-toggle')
    page.click('nav .dropdown-menu >> text=Sign out')
    page.wait_for_selector('text=You have been signed out.')

    sign_in(page)
    page.wait_for_url('**/login/verify')
    check_page(page)
    page.fill('input[name=code]', '000000')
    page.click('input[value="Sign in"]')
    page.wait_for_selector('text=That code is not right')
    page.fill('input[name=code]', code_for(server, secret))
    page.check('input[name=trust]')
    page.click('input[value="Sign in"]')
    page.wait_for_url('**/index')
    check_page(page)
    page.click('nav .dropdown-toggle')
    page.click('nav .dropdown-menu >> text=Sign out')
    page.wait_for_selector('text=You have been signed out.')
    sign_in(page)  # a trusted browser: no second step
    page.wait_for_url('**/index')


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=AXE)
    return page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})
            .then(r => r.violations.map(v => v.id + ': ' +
                v.nodes.map(n => n.target.join(' ') + ' (' +
                    (n.any[0] || n.all[0] || {message: ''}).message + ')')
                .join(', ')))""",
        AXE_TAGS,
    )


@pytest.mark.parametrize('theme', ['light', 'dark'])
@pytest.mark.parametrize('width', [390, 1280])
def test_every_two_factor_page_passes_axe(browser, server, width, theme):
    if not os.path.exists(AXE):
        message = f'{AXE} not found: `make test` installs axe-core with npm'
        if os.environ.get('REQUIRE_BROWSER'):
            pytest.fail(message)
        pytest.skip(message)
    page = new_page(
        browser, server, viewport={'width': width, 'height': 900},
        color_scheme=theme, bypass_csp=True,  # only to inject axe
    )  # fmt: skip
    folder = os.path.join(ARTIFACTS, 'pages')
    os.makedirs(folder, exist_ok=True)
    problems = {}

    def visit(name, path=None):
        if path:
            page.goto(path)
        assert page.evaluate('document.documentElement.dataset.bsTheme') == theme
        page.screenshot(path=os.path.join(folder, f'{name}-{width}-{theme}.png'),
                        full_page=True)  # fmt: skip
        found = axe_violations(page)
        if found:
            problems[name] = found

    sign_in(page)
    page.wait_for_url('**/index')
    visit('two-factor-off', '/two_factor')
    visit('two-factor-setup', '/two_factor/setup')
    page.fill('input[name=code]', '000000')
    page.click('input[value="Turn on"]')
    page.wait_for_selector('.invalid-feedback')
    visit('two-factor-setup-error')
    secret, _ = set_up_authenticator(page, server)
    visit('recovery-codes-new')
    visit('two-factor-on', '/two_factor')
    visit('recovery-codes', '/recovery_codes')
    visit('two-factor-disable', '/two_factor/disable')
    visit('reauthenticate', '/reauthenticate?next=/two_factor')
    page.fill('input[name=code]', '000000')
    page.click('input[value=Continue]')
    page.wait_for_selector('.invalid-feedback')
    visit('reauthenticate-error')
    page.context.close()
    page = new_page(browser, server, viewport={'width': width, 'height': 900},
                    color_scheme=theme, bypass_csp=True)  # fmt: skip
    sign_in(page)
    page.wait_for_url('**/login/verify')
    visit('login-verify')
    page.fill('input[name=code]', '000000')
    page.click('input[value="Sign in"]')
    page.wait_for_selector('.invalid-feedback')
    visit('login-verify-error')
    page.context.close()
    assert problems == {}
