"""Passkeys end to end (issue 25): Debian's Chromium with a virtual
authenticator (DevTools Protocol: WebAuthn.addVirtualAuthenticator, CTAP2,
internal, resident keys, user verification), the app served as
`localhost` (an IP address cannot be a relying party)."""

import os
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_browser import browser_logout, browser_menu, check_page

from app import db
from app.dbtypes import utcnow
from app.mfa.models import Authenticator
from app.models import User
from app.sessions import UserSession
from app.testing import LiveServer, free_port
from app.testing.browser import AXE, axe_violations, browser_login, new_page
from app.testing.data import make_user

# The virtual authenticator answers a conditional (autofill) request at
# once, as a person picking the passkey from the list would; pages where a
# test wants the button instead set this flag, and the browser then says
# it has no autofill for passkeys.
NO_AUTOFILL = """
if (localStorage.getItem('no-autofill') && window.PublicKeyCredential) {
  PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);
}
"""


@pytest.fixture
def localhost_server(make_app):
    port = free_port()
    app = make_app(
        SERVER_NAME=f'localhost:{port}',
        PREFERRED_URL_SCHEME='http',
        WTF_CSRF_ENABLED=True,
        GRAVATAR=False,
        REAUTH_WINDOW=600,
    )
    with app.app_context():
        make_user('alice')
    server = LiveServer(app, port, host='localhost').start()
    yield server
    server.stop()


def passkey_page(browser, server, **options):
    """A page with its own virtual authenticator: (page, CDP session, id)."""
    page = new_page(browser, server, **options)
    page.add_init_script(NO_AUTOFILL)
    cdp = page.context.new_cdp_session(page)
    cdp.send('WebAuthn.enable', {'enableUI': False})
    authenticator = cdp.send(
        'WebAuthn.addVirtualAuthenticator',
        {
            'options': {
                'protocol': 'ctap2',
                'transport': 'internal',
                'hasResidentKey': True,
                'hasUserVerification': True,
                'isUserVerified': True,
                'automaticPresenceSimulation': True,
            }
        },
    )
    return page, cdp, authenticator['authenticatorId']


def autofill(page, on: bool) -> None:
    if on:
        page.evaluate("localStorage.removeItem('no-autofill')")
    else:
        page.evaluate("localStorage.setItem('no-autofill', '1')")


def add_passkey(page) -> None:
    page.goto('/passkeys')
    page.click('button:has-text("Add a passkey")')
    page.wait_for_selector('text=Passkey added as')


def sign_out(page) -> None:
    autofill(page, False)
    browser_logout(page)


def turn_on_authenticator(app, username='alice') -> None:
    with app.app_context():
        user = User.by_username(username)
        sealed = Authenticator.new_secret(user)
        code = Authenticator.open_sealed(user, sealed).now()
        assert Authenticator.turn_on(user, sealed, code)
        db.session.commit()


def age_proofs(app) -> None:
    with app.app_context():
        old = utcnow() - timedelta(hours=1)
        db.session.execute(sa.update(UserSession).values(proven_at=old))
        db.session.commit()


@pytest.mark.browser
def test_passkey_story(browser, localhost_server, smtp):
    app = localhost_server.app
    page, cdp, authenticator = passkey_page(browser, localhost_server)
    page.goto('/login')
    autofill(page, False)
    browser_login(page, 'alice')
    page.wait_for_url('**/index')

    add_passkey(page)
    check_page(page, 'passkeys-added')
    credentials = cdp.send(
        'WebAuthn.getCredentials', {'authenticatorId': authenticator}
    )
    (credential,) = credentials['credentials']
    assert credential['isResidentCredential'] and credential['rpId'] == 'localhost'
    smtp.take('A passkey was added', 'alice@example.com')

    name = page.locator('input[name$="-name"]')
    name.fill('My laptop')
    page.click('button:has-text("Rename")')
    page.wait_for_selector('text=Passkey renamed to "My laptop".')

    # The button, where the browser offers no autofill.
    sign_out(page)
    assert page.get_attribute('#username', 'autocomplete') == 'username webauthn'
    page.click('button:has-text("Sign in with a passkey")')
    page.wait_for_url('**/index')
    check_page(page)

    # Through the autofill: signed out, the sign-in page signs in with no
    # click at all (too fast to wait for the "signed out" message).
    autofill(page, True)
    with page.expect_response(lambda r: r.url.endswith('/login/passkey')) as answer:
        browser_menu(page, 'Sign out')
    assert answer.value.status == 302
    page.wait_for_url('**/index')
    assert page.is_visible('nav .dropdown-toggle')

    # As the second step after a password.
    turn_on_authenticator(app)
    sign_out(page)
    browser_login(page, 'alice')
    page.wait_for_url('**/login/verify')
    check_page(page)
    page.click('button:has-text("Use a passkey")')
    page.wait_for_url('**/index')

    # As the proof a sensitive page asks for.
    age_proofs(app)
    page.goto('/passkeys')
    page.wait_for_url(re.compile(r'/reauthenticate\?next=/passkeys$'))
    check_page(page)
    page.click('button:has-text("Use a passkey")')
    page.wait_for_url('**/passkeys')

    page.click('button[aria-label="Remove My laptop"]')
    page.wait_for_selector('text=Passkey "My laptop" removed')
    assert page.is_visible('text=You have no passkeys yet.')
    smtp.take('A passkey was removed', 'alice@example.com')
    # The authenticator still holds it, but the site refuses it now.
    sign_out(page)
    page.click('button:has-text("Sign in with a passkey")')
    page.wait_for_selector('text=That passkey is not registered here.')
    check_page(page)
    page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize('theme', ['light', 'dark'])
@pytest.mark.parametrize('width', [390, 1280])
def test_passkey_pages_pass_axe(browser, localhost_server, width, theme):
    if not os.path.exists(AXE):
        pytest.skip(f'{AXE} not found: `make test` installs axe-core with npm')
    app = localhost_server.app
    page, _, _ = passkey_page(
        browser, localhost_server, viewport={'width': width, 'height': 900},
        color_scheme=theme, bypass_csp=True,  # only to inject axe
    )  # fmt: skip
    problems = {}

    def visit(name):
        page.wait_for_load_state('load')
        found = axe_violations(page)
        if found:
            problems[name] = found

    page.goto('/login')
    autofill(page, False)
    page.reload()
    page.wait_for_selector('button:has-text("Sign in with a passkey")')
    visit('login')
    browser_login(page, 'alice')
    page.wait_for_url('**/index')
    page.goto('/passkeys')
    visit('passkeys-empty')
    add_passkey(page)
    visit('passkeys')
    page.fill('input[name$="-name"]', '')
    page.click('button:has-text("Rename")')
    page.wait_for_selector('.invalid-feedback')
    visit('passkeys-rename-error')
    turn_on_authenticator(app)
    # The menu is folded at 390 px: the sign-out form is sent directly.
    page.evaluate('document.querySelector(\'form[action="/logout"]\').submit()')
    page.wait_for_url('**/login')
    browser_login(page, 'alice')
    page.wait_for_selector('button:has-text("Use a passkey")')
    visit('verify')
    page.click('button:has-text("Use a passkey")')
    page.wait_for_url('**/index')
    age_proofs(app)
    page.goto('/reauthenticate?next=/passkeys')
    page.wait_for_selector('button:has-text("Use a passkey")')
    visit('reauthenticate')
    page.context.close()
    assert problems == {}
