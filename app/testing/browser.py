"""Chromium pages on the live server, and the people the browser tests meet."""

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app import db
from app.models import Post
from app.testing.clients import PASSWORD
from app.testing.data import make_user
from app.testing.processes import ROOT, LiveServer, PageWatch
from app.testing.smtp import free_port

AXE = os.path.join(ROOT, 'node_modules', 'axe-core', 'axe.min.js')
AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=AXE)
    found = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})
            .then(r => r.violations.map(v => v.id + ': ' +
                v.nodes.map(n => n.target.join(' ') + ' (' +
                    (n.any[0] || n.all[0] || {message: ''}).message + ')')
                .join(', ')))""",
        AXE_TAGS,
    )
    return found


def browser_login(page, username: str, password: str = PASSWORD) -> None:
    page.goto('/login')
    page.fill('input[name=username]', username)
    page.fill('input[name=password]', password)
    page.click('input[type=submit]')


def seed_people(app, zone: str = 'UTC') -> None:
    """alice follows bob, who posted 5 minutes ago, yesterday (noon in
    `zone`) and 40 days ago; carol follows nobody and has not posted."""
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo(zone)) - timedelta(days=1)
    yesterday = local.replace(hour=12, minute=0).astimezone(UTC)
    stamps = [now - timedelta(minutes=5), yesterday, now - timedelta(days=40)]
    with app.app_context():
        alice, bob = make_user('alice'), make_user('bob')
        make_user('carol')
        for i, stamp in enumerate(stamps):
            db.session.add(Post(body=f'Post {i} by bob', author=bob, timestamp=stamp))
        alice.follow(bob)
        db.session.commit()


def alice_at_home(browser, live_server, zone: str = 'UTC', **options):
    """seed_people(), then alice signed in on her timeline in a new page."""
    seed_people(live_server.app, zone)
    page = new_page(browser, live_server, **options)
    browser_login(page, 'alice')
    page.wait_for_url('**/index')
    return page


def new_page(browser, live_server, **options):
    context = browser.new_context(base_url=live_server.url, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.watch = PageWatch(page, live_server.url)
    return page


def proven_live_server(make_app) -> LiveServer:
    """The live_server fixture's app, with a re-authentication window: the
    sign-in is a proof, so pages behind a recent proof open (/export,
    /delete_account). Stop it when done."""
    port = free_port()
    app = make_app(
        SERVER_NAME=f'127.0.0.1:{port}',
        PREFERRED_URL_SCHEME='http',
        WTF_CSRF_ENABLED=True,
        GRAVATAR=False,
        REAUTH_WINDOW=600,
    )
    return LiveServer(app, port).start()
