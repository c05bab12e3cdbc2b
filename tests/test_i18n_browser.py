"""The story in Spanish in Chromium, and axe on every page in Spanish and
Chinese (the page's lang included)."""

import os
import re

import pytest

from app.testing import ARTIFACTS, PASSWORD
from app.testing.browser import (
    AXE,
    axe_violations,
    browser_login,
    new_page,
    proven_live_server,
    seed_people,
)
from app.testing.i18n import LANGUAGES, translate

PAGES = [
    '/login', '/register', '/reset_password_request', '/no/such/page',
    'sign in', '/index', '/explore', '/user/alice', '/user/bob', '/edit_profile',
    '/settings', '/change_password', '/change_email', '/sessions', '/two_factor',
    '/two_factor/setup', '/passkeys', '/security_log', '/export', '/delete_account',
]  # fmt: skip


@pytest.mark.browser
def test_the_story_in_spanish(browser, live_server, smtp):
    """A Spanish browser signs up, gets its email in Spanish, confirms,
    signs in and posts; times read in Spanish."""
    es = lambda english: translate('es', english)  # noqa: E731
    page = new_page(browser, live_server, locale='es-ES')
    page.goto('/register')
    assert page.evaluate('document.documentElement.lang') == 'es'
    page.fill('input[name=username]', 'lucia')
    page.fill('input[name=email]', 'lucia@example.com')
    page.fill('input[name=password]', PASSWORD)
    page.fill('input[name=password2]', PASSWORD)
    page.click('input[type=submit]')
    page.wait_for_url('**/login')
    page.wait_for_selector(f'text={es("Check your email to finish signing up.")}')

    subject = es('[Microblog] Confirm your email address')
    assert subject != '[Microblog] Confirm your email address'
    message = smtp.take(subject, 'lucia@example.com')
    assert message['Content-Language'] == 'es'
    text = message.get_body(('plain',)).get_content()
    assert es('Sincerely,') in text and 'Sincerely' not in text
    page.goto(re.search(r'http://\S+/confirm_email/[\w.-]+', text)[0])
    page.click('input[type=submit]')
    browser_login(page, 'lucia')
    page.wait_for_url('**/index')
    page.fill('textarea[name=post]', '¡Hola a todos!')
    # Until the page has loaded: the post's text is in the DOM while it is
    # still being parsed, before app.js (at its end) words the times.
    with page.expect_navigation():
        page.click('input[type=submit]')
    page.wait_for_selector('text=¡Hola a todos!')
    when = page.text_content('article time')
    assert when in ('ahora', 'hace 1 minuto') or when.startswith('hace '), when
    page.fill('textarea[name=post]', 'x' * 141)  # the counter speaks Spanish too
    assert page.text_content('#post-count') == '1 carácter de más'
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, 'story-es.png'), full_page=True)
    page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize('language', LANGUAGES)
def test_every_page_passes_axe_in_each_language(browser, make_app, language):
    if not os.path.exists(AXE):
        pytest.skip(f'{AXE} not found: `make test` installs axe-core with npm')
    tag = language.replace('_', '-')
    server = proven_live_server(make_app)
    seed_people(server.app)
    page = new_page(browser, server, locale=tag, bypass_csp=True,
                    viewport={'width': 1280, 'height': 900})  # fmt: skip
    folder = os.path.join(ARTIFACTS, 'languages')
    os.makedirs(folder, exist_ok=True)
    problems = {}
    try:
        for path in PAGES:
            if path == 'sign in':
                browser_login(page, 'alice')
                page.wait_for_url('**/index')
                continue
            page.goto(path)
            assert page.evaluate('document.documentElement.lang') == tag, path
            name = path.strip('/').replace('/', '-') or 'home'
            page.screenshot(path=os.path.join(folder, f'{name}-{language}.png'),
                            full_page=True)  # fmt: skip
            found = axe_violations(page)
            if found:
                problems[path] = found
    finally:
        page.context.close()
        server.stop()
    assert problems == {}
