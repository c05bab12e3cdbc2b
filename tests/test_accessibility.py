"""axe-core on every page in both themes and widths; the story by keyboard."""

import os

import pytest

from app.testing import ARTIFACTS
from app.testing.browser import (
    AXE,
    alice_at_home,
    axe_violations,
    browser_login,
    new_page,
    proven_live_server,
    seed_people,
)

SIGNED_OUT_PAGES = {
    'login': '/login',
    'register': '/register',
    'reset-request': '/reset_password_request',
    'reset-sent': '/reset_password_request/sent',
    'reset-expired': '/reset_password_problem/expired',
    'reset-invalid': '/reset_password_problem/invalid',
    'not-found': '/no/such/page',
}
SIGNED_IN_PAGES = {
    'timeline': '/index',
    'explore': '/explore',
    'profile': '/user/alice',
    'other-profile': '/user/bob',
    'edit-profile': '/edit_profile',
    'settings': '/settings',
    'change-password': '/change_password',
    'change-email': '/change_email',
    'sessions': '/sessions',
}


@pytest.mark.browser
@pytest.mark.parametrize('theme', ['light', 'dark'])
@pytest.mark.parametrize('width', [390, 1280])
def test_every_page_passes_axe_in_both_themes_and_widths(
    browser, live_server, width, theme
):
    if not os.path.exists(AXE):
        message = f'{AXE} not found: `make test` installs axe-core with npm'
        if os.environ.get('REQUIRE_BROWSER'):
            pytest.fail(message)
        pytest.skip(message)
    seed_people(live_server.app)
    page = new_page(
        browser, live_server, viewport={'width': width, 'height': 900},
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

    for name, path in SIGNED_OUT_PAGES.items():
        visit(name, path)
    browser_login(page, 'nobody', 'wrong password!')  # a form with errors
    page.wait_for_selector('text=Invalid username or password')
    visit('login-error')
    browser_login(page, 'alice')
    page.wait_for_url('**/index')
    for name, path in SIGNED_IN_PAGES.items():
        visit(name, path)
    page.goto('/index')
    page.fill('textarea[name=post]', 'x' * 150)
    page.click('input[value=Post]')
    page.wait_for_selector('.invalid-feedback')
    visit('post-error')
    page.context.close()
    page = new_page(browser, live_server, viewport={'width': width, 'height': 900},
                    color_scheme=theme, bypass_csp=True)  # fmt: skip
    browser_login(page, 'carol')
    page.wait_for_url('**/index')
    visit('empty-timeline', '/index')
    visit('empty-profile', '/user/carol')
    page.context.close()
    assert problems == {}


@pytest.mark.browser
@pytest.mark.parametrize('theme, width', [('light', 390), ('dark', 1280)])
def test_the_your_data_pages_pass_axe(browser, make_app, smtp, theme, width):
    """Security log, one event, export, delete (and its form error), then
    signed out: deletion scheduled and the restore page (issue 26)."""
    if not os.path.exists(AXE):
        pytest.skip(f'{AXE} not found: `make test` installs axe-core with npm')
    server = proven_live_server(make_app)
    seed_people(server.app)
    page = new_page(browser, server, viewport={'width': width, 'height': 900},
                    color_scheme=theme, bypass_csp=True)  # fmt: skip
    problems = {}

    def visit(name, path=None):
        if path:
            page.goto(path)
        found = axe_violations(page)
        if found:
            problems[name] = found

    try:
        browser_login(page, 'bob')
        page.wait_for_url('**/index')
        for name, path in [('security-log', '/security_log'),
                           ('security-event', '/security_log/1'),
                           ('export', '/export'),
                           ('delete-account', '/delete_account')]:  # fmt: skip
            visit(name, path)
        page.fill('input[name=confirm]', 'not bob')
        page.click('input[value="Delete my account"]')
        page.wait_for_selector('.invalid-feedback')
        visit('delete-account-error')
        page.fill('input[name=confirm]', 'bob')
        page.click('input[value="Delete my account"]')
        page.wait_for_url('**/login')
        browser_login(page, 'bob')
        page.wait_for_url('**/deletion_scheduled')
        visit('deletion-scheduled')
        message = smtp.take('scheduled for deletion', 'bob@example.com')
        text = message.get_body(('plain',)).get_content()
        page.goto(text[text.index('/restore_account/') :].split()[0])
        page.wait_for_url('**/restore_account/confirm')
        visit('restore-account')
    finally:
        page.context.close()
        server.stop()
    assert problems == {}


@pytest.mark.browser
def test_the_whole_story_works_from_the_keyboard(browser, live_server):
    page = alice_at_home(browser, live_server)
    page.keyboard.press('Tab')
    focused = page.evaluate('document.activeElement.textContent.trim()')
    assert focused == 'Skip to main content'
    outline = page.evaluate(
        "getComputedStyle(document.activeElement).boxShadow + ' ' + "
        'getComputedStyle(document.activeElement).outlineStyle'
    )
    assert outline.strip() not in ('none none', '')  # a visible focus ring
    page.keyboard.press('Enter')
    assert page.evaluate('document.activeElement.id') == 'main'
    page.keyboard.press('Tab')  # into the content: the composer
    page.keyboard.type('Typed without a mouse')
    page.keyboard.press('Control+Enter')
    page.wait_for_selector('text=Your post is now live!')
    page.focus('nav .dropdown-toggle')
    page.keyboard.press('Enter')
    page.keyboard.press('ArrowDown')
    assert page.evaluate('document.activeElement.textContent.trim()') == 'Profile'
    page.keyboard.press('Enter')
    page.wait_for_url('**/user/alice')
    assert 'Typed without a mouse' in page.content()
    page.context.close()
