"""Debian's Chromium driven by Playwright against the app on a real server."""

import os
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.models import User
from app.testing import ARTIFACTS, PASSWORD
from app.testing.browser import alice_at_home, browser_login, new_page
from app.testing.data import NEW_PASSWORD
from app.testing.links import reset_link


def check_page(page, shot: str | None = None) -> None:
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
    if shot:
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, f'{shot}.png'), full_page=True)


def browser_register(page, smtp, username: str) -> None:
    """Sign up, then confirm the address from the emailed link."""
    page.goto('/register')
    check_page(page)
    page.fill('input[name=username]', username)
    page.fill('input[name=email]', f'{username}@example.com')
    page.fill('input[name=password]', PASSWORD)
    page.fill('input[name=password2]', PASSWORD)
    page.click('input[type=submit]')
    page.wait_for_url('**/login')
    page.wait_for_selector('text=Check your email to finish signing up.')
    check_page(page)
    browser_follow_confirmation(page, smtp, f'{username}@example.com')
    page.wait_for_selector('text=your email address is confirmed')


def browser_follow_confirmation(page, smtp, address: str, shot=None) -> None:
    message = smtp.take('Confirm your', address)
    link = re.search(
        r'http://\S+/confirm_email/[\w.-]+', message.get_body(('plain',)).get_content()
    )[0]
    page.goto(link)
    page.wait_for_url('**/confirm_email/confirm')
    check_page(page, shot)
    page.click('input[value=Confirm]')


def browser_menu(page, item: str) -> None:
    """Open the account menu under the user's name and choose `item`."""
    page.click('nav .dropdown-toggle')
    page.click(f'nav .dropdown-menu >> text={item}')


def browser_logout(page) -> None:
    browser_menu(page, 'Sign out')
    page.wait_for_selector('text=You have been signed out.')


@pytest.mark.browser
def test_browser_story(page, live_server, smtp, browser):
    browser_register(page, smtp, 'alice')
    browser_register(page, smtp, 'bob')

    browser_login(page, 'alice')
    page.wait_for_url('**/index')
    for i in range(4):
        page.fill('textarea[name=post]', f'Hello from Alice {i}')
        page.click('input[type=submit]')
        page.wait_for_selector('text=Your post is now live!')
    check_page(page)
    browser_logout(page)
    check_page(page, 'login')

    browser_login(page, 'bob')
    page.wait_for_url('**/index')
    assert 'Hello from Alice' not in page.content()
    page.click('nav >> text=Explore')
    page.wait_for_url('**/explore')
    check_page(page)
    assert 'Hello from Alice 3' in page.content()
    page.click('text=Older posts')  # POSTS_PER_PAGE is 3
    page.wait_for_url('**/explore?page=2')
    assert 'Hello from Alice 0' in page.content()
    check_page(page)
    page.click('a:has-text("alice") >> nth=0')
    page.wait_for_url('**/user/alice')
    page.click('input[value=Follow]')
    page.wait_for_selector('text=You are following alice!')
    check_page(page, 'profile')
    page.click('nav >> text=Home')
    page.wait_for_url('**/index')
    assert 'Hello from Alice 3' in page.content()
    check_page(page, 'timeline')

    browser_menu(page, 'Profile')
    page.click('text=Edit your profile')
    page.fill('textarea[name=about_me]', 'Bob builds things.')
    page.click('input[type=submit]')
    page.wait_for_selector('text=Your changes have been saved.')
    check_page(page)
    page.goto('/user/bob')
    assert 'Bob builds things.' in page.content()

    # Change email: nothing changes until the new address is confirmed.
    browser_menu(page, 'Settings')
    check_page(page, 'settings')
    page.click('text=Change email address')
    page.fill('input[name=current_password]', PASSWORD)
    page.fill('input[name=email]', 'bob@new.example')
    page.click('input[type=submit]')
    page.wait_for_selector('text=We sent a link to bob@new.example')
    browser_follow_confirmation(page, smtp, 'bob@new.example', 'confirm_email')
    page.wait_for_selector('text=Your email address is now bob@new.example.')
    smtp.take('Your email address was changed', 'bob@example.com')

    # A second browser signs in; the first signs it out from /sessions.
    laptop = browser.new_context(base_url=live_server.url).new_page()
    browser_login(laptop, 'bob')
    laptop.wait_for_url('**/index')
    page.goto('/sessions')
    check_page(page, 'sessions')
    assert page.locator('tbody tr').count() == 2
    page.click('tbody tr:not(:has-text("this browser")) button:has-text("Sign out")')
    page.wait_for_selector('text=That session was signed out.')
    assert page.locator('tbody tr').count() == 1
    laptop.goto('/index')
    laptop.wait_for_url('**/login?next=%2Findex')
    laptop.context.close()
    browser_logout(page)

    page.click('text=Reset it by email')
    page.wait_for_url('**/reset_password_request')
    check_page(page, 'reset_request')
    page.fill('input[name=email]', 'bob@new.example')
    page.click('input[type=submit]')
    page.wait_for_selector('text=Check your email for the instructions')
    message = smtp.take('Reset Your Password', 'bob@new.example')
    link = reset_link(message)
    assert link.startswith(live_server.url + '/reset_password/')

    page.goto(link)
    page.wait_for_url('**/reset_password/set-password')
    check_page(page, 'reset_form')
    page.fill('input[name=password]', NEW_PASSWORD)
    page.fill('input[name=password2]', NEW_PASSWORD)
    page.click('input[type=submit]')
    page.wait_for_selector('text=Your password has been reset.')

    browser_login(page, 'bob', PASSWORD)
    page.wait_for_selector('text=Invalid username or password')
    browser_login(page, 'bob', NEW_PASSWORD)
    page.wait_for_url('**/index')
    check_page(page)
    browser_logout(page)

    # An expired link explains itself and offers a new one.
    with live_server.app.app_context():
        expired = User.by_username('bob').get_reset_password_token(-1)
    page.goto(f'/reset_password/{expired}')
    page.wait_for_url('**/reset_password_problem/expired')
    check_page(page, 'reset_expired')
    page.click('button:has-text("Send me a new link")')
    page.wait_for_url('**/reset_password_request/sent')
    check_page(page, 'reset_sent')
    assert reset_link(smtp.take('Reset Your Password', 'bob@new.example'))


@pytest.mark.browser
def test_times_read_in_the_readers_time_zone(browser, live_server):
    zone = 'Pacific/Auckland'
    page = alice_at_home(browser, live_server, zone, timezone_id=zone)
    times = page.locator('article time')
    assert times.nth(0).inner_text() == '5 minutes ago'
    assert times.nth(1).inner_text() == 'yesterday'
    assert re.fullmatch(r'\d{1,2} \w{3} 20\d\d|\w{3} \d{1,2}, 20\d\d',
                        times.nth(2).inner_text())  # fmt: skip
    stamp = datetime.fromisoformat(times.nth(0).get_attribute('datetime'))
    local = stamp.astimezone(ZoneInfo('Pacific/Auckland'))
    title = times.nth(0).get_attribute('title')
    assert f'{local:%-I:%M}' in title or f'{local:%H:%M}' in title
    check_page(page)
    page.context.close()
    plain = new_page(browser, live_server, java_script_enabled=False)
    browser_login(plain, 'alice')
    plain.wait_for_url('**/index')
    assert plain.locator('article time').nth(0).inner_text().endswith(' UTC')
    plain.context.close()


@pytest.mark.browser
def test_the_composer_counts_and_posts_with_ctrl_enter(browser, live_server):
    page = alice_at_home(browser, live_server)
    counter = page.locator('#post-count')
    assert counter.inner_text() == '140 characters left'
    box = page.locator('textarea[name=post]')
    box.fill('a' * 130 + '\n' + 'é' * 8)  # a line break counts once
    assert counter.inner_text() == '1 character left'
    box.fill('b' * 142)
    assert counter.inner_text() == '2 characters too many'
    assert box.get_attribute('aria-invalid') == 'true'
    box.fill('line one\nline two ' + 'c' * 122)  # exactly 140
    box.press('Control+Enter')
    page.wait_for_selector('text=Your post is now live!')
    assert 'line two' in page.locator('article').first.inner_text()
    page.context.close()
