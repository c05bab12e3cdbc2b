"""Fixtures (only fixtures) for tests.py and tests/: the app on a fresh
database, a real SMTP server, a browser, app and mail-worker processes.

The helpers behind them live in app/testing/, which the benchmarks share.
"""

import os

import pytest

from app import create_app, db
from app.testing import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    AppProcess,
    AuthActions,
    LiveServer,
    MailWorkerProcess,
    PageWatch,
    SMTPSink,
    StatementCounter,
    free_port,
)
from config import TestConfig


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slow: starts processes (gunicorn, flask mail worker)'
    )
    config.addinivalue_line('markers', 'browser: drives Chromium with Playwright')


@pytest.fixture(scope='session')
def smtp():
    sink = SMTPSink().start()
    yield sink
    sink.stop()


def database_url(tmp_path) -> str:
    return os.environ.get('TEST_DATABASE_URL') or f'sqlite:///{tmp_path}/test.db'


@pytest.fixture
def make_app(smtp, tmp_path):
    """Build apps on one fresh database: make_app(SETTING=value, ...)."""
    apps = []
    url = database_url(tmp_path)

    def factory(**overrides):
        settings = {
            'SQLALCHEMY_DATABASE_URI': url,
            'MAIL_PORT': smtp.port,
            **overrides,
        }
        sender_enabled = settings.pop('MAIL_SENDER_ENABLED', True)
        config = type('Config', (TestConfig,), settings)
        config.MAIL_SENDER_ENABLED = False  # start it once the tables exist
        app = create_app(config)
        if not apps:
            with app.app_context():
                db.drop_all()
                db.create_all()
        app.config['MAIL_SENDER_ENABLED'] = sender_enabled
        if sender_enabled:
            app.extensions['outbox'].start()
        apps.append(app)
        return app

    smtp.reset()
    yield factory
    for app in reversed(apps):
        app.extensions['outbox'].stop(timeout=10)
    with apps[0].app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    for app in apps[1:]:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client, smtp):
    return AuthActions(client, smtp)


@pytest.fixture
def count_statements():
    """count_statements(app) -> a context manager counting its statements."""

    def counter(app):
        with app.app_context():
            engine = db.engine
        return StatementCounter(engine)

    return counter


@pytest.fixture
def live_server(make_app):
    port = free_port()
    app = make_app(
        SERVER_NAME=f'127.0.0.1:{port}',
        PREFERRED_URL_SCHEME='http',
        WTF_CSRF_ENABLED=True,
        GRAVATAR=False,
        RESET_EMAIL_INTERVAL=0,  # the story asks for several resets
    )
    server = LiveServer(app, port).start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def browser():
    if not os.path.exists(CHROMIUM):
        message = (
            f'{CHROMIUM} not found: install Debian chromium (make test does it '
            'as root) to run the browser tests'
        )
        if os.environ.get('REQUIRE_BROWSER'):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == 'call' and report.failed:
        page = item.funcargs.get('page')
        if page is not None and not page.is_closed():
            os.makedirs(ARTIFACTS, exist_ok=True)
            page.screenshot(path=os.path.join(ARTIFACTS, f'FAILED-{item.name}.png'))
    return report


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.watch = PageWatch(page, live_server.url)
    yield page
    context.close()


def _stop_processes(started) -> None:
    for proc in started:
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait()


@pytest.fixture
def app_process(smtp, tmp_path):
    """app_process(database_url, **env) -> gunicorn serving the app."""
    started = []

    def factory(database_url: str, smtp_port: int | None = None, **kw):
        proc = AppProcess(database_url, smtp_port or smtp.port, **kw)
        started.append(proc)
        return proc

    yield factory
    _stop_processes(started)


@pytest.fixture
def mail_worker(smtp):
    """mail_worker(database_url, **env) -> a `flask mail worker` process."""
    started = []

    def factory(database_url: str, **env):
        proc = MailWorkerProcess(database_url, smtp.port, **env)
        started.append(proc)
        return proc

    yield factory
    _stop_processes(started)
