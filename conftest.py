"""Shared fixtures: the app on a fresh database, a real SMTP server, helpers."""

import email
import email.policy
import os
import socket
import threading
import time

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from app import create_app, db
from config import TestConfig

PASSWORD = 'correct horse battery staple'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class SinkHandler:
    """Collects messages; can be told to be slow or to refuse recipients."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.delay = 0.0
        self.reject: set[str] = set()
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return '550 5.1.1 No such user here'
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(
            envelope.content, policy=email.policy.default
        )
        with self.lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return '250 Message accepted for delivery'


class SMTPSink:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.handler = SinkHandler()
        self.controller: Controller | None = None

    def start(self) -> 'SMTPSink':
        self.controller = Controller(
            self.handler, hostname='127.0.0.1', port=self.port, ready_timeout=10
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        return self.handler.messages

    def reset(self) -> None:
        self.handler.messages.clear()
        self.handler.envelopes.clear()
        self.handler.delay = 0.0
        self.handler.reject.clear()

    def wait_for(self, count: int = 1, timeout: float = 15.0):
        """Poll until `count` messages arrived (sending is asynchronous)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return self.messages[:count]
            time.sleep(0.05)
        raise AssertionError(f'expected {count} email(s), got {len(self.messages)}')


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


class AuthActions:
    def __init__(self, client):
        self.client = client

    def register(self, username='susan', email='susan@example.com', password=PASSWORD):
        return self.client.post(
            '/register',
            data={
                'username': username,
                'email': email,
                'password': password,
                'password2': password,
            },
        )

    def login(self, username='susan', password=PASSWORD, remember=False, **kw):
        data = {'username': username, 'password': password}
        if remember:
            data['remember_me'] = 'y'
        return self.client.post('/login', data=data, **kw)

    def logout(self):
        return self.client.post('/logout')


@pytest.fixture
def auth(client):
    return AuthActions(client)


class StatementCounter:
    """Counts SQL statements this thread sends (the sender thread's are not)."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []
        self.thread = threading.get_ident()

    def __call__(self, conn, cursor, statement, *args):
        if threading.get_ident() == self.thread:
            self.statements.append(statement)

    def __enter__(self):
        sa.event.listen(self.engine, 'before_cursor_execute', self)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, 'before_cursor_execute', self)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements():
    """count_statements(app) -> a context manager counting its statements."""

    def counter(app):
        with app.app_context():
            engine = db.engine
        return StatementCounter(engine)

    return counter


class LiveServer:
    """The app served by a real WSGI server in a thread, on a free port."""

    def __init__(self, app, port: int):
        from werkzeug.serving import make_server

        self.app = app
        self.port = port
        self.url = f'http://127.0.0.1:{port}'
        self.server = make_server('127.0.0.1', port, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> 'LiveServer':
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_server(make_app):
    port = free_port()
    app = make_app(
        SERVER_NAME=f'127.0.0.1:{port}',
        PREFERRED_URL_SCHEME='http',
        WTF_CSRF_ENABLED=True,
        GRAVATAR=False,
    )
    server = LiveServer(app, port).start()
    yield server
    server.stop()


CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--no-first-run',
    '--disable-sync',
    '--disable-quic',
]
ARTIFACTS = os.path.join(os.path.dirname(__file__), 'test-artifacts')


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


class PageWatch:
    """Records console errors and requests to hosts other than the app's."""

    def __init__(self, page, origin: str):
        self.origin = origin
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        page.on('console', self._console)
        page.on('pageerror', lambda exc: self.console_errors.append(str(exc)))
        page.on('request', self._request)

    def _console(self, message):
        if message.type == 'error':
            self.console_errors.append(message.text)

    def _request(self, request):
        url = request.url
        if not (url.startswith(self.origin + '/') or url.startswith('data:')):
            self.foreign_requests.append(url)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.watch = PageWatch(page, live_server.url)
    yield page
    context.close()


ROOT = os.path.dirname(os.path.abspath(__file__))


class AppProcess:
    """The app under gunicorn in its own process group, as operators run it."""

    def __init__(self, database_url: str, smtp_port: int, workers: int = 1, **env):
        import sys

        self.port = free_port()
        self.log_path = os.path.join(
            ROOT, 'test-artifacts', f'gunicorn-{self.port}.log'
        )
        self.command = [
            sys.executable, '-m', 'gunicorn', '-w', str(workers),
            '-b', f'127.0.0.1:{self.port}', '--graceful-timeout', '30',
            'microblog:app',
        ]  # fmt: skip
        self.env = {
            **os.environ,
            'APP_ENV': 'production',
            'SECRET_KEY': 'process-test-secret-key-0123456789abcdef',
            'SERVER_NAME': f'127.0.0.1:{self.port}',
            'PREFERRED_URL_SCHEME': 'http',
            'DATABASE_URL': database_url,
            'MAIL_SERVER': '127.0.0.1',
            'MAIL_PORT': str(smtp_port),
            'MAIL_TIMEOUT': '10',
            'MAIL_POLL_INTERVAL': '0.2',
            'LOG_TO_STDOUT': 'true',
            **env,
        }
        self.process = None

    def start(self) -> 'AppProcess':
        import subprocess

        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise AssertionError(f'gunicorn did not start: see {self.log_path}')

    def terminate(self, timeout: float = 45) -> int:
        """SIGTERM, as a deploy or restart does; wait for a graceful exit."""
        self.process.terminate()
        code = self.process.wait(timeout)
        self.log.close()
        return code

    def output(self) -> str:
        with open(self.log_path, encoding='utf-8', errors='replace') as f:
            return f.read()


@pytest.fixture
def app_process(smtp, tmp_path):
    started = []

    def factory(database_url: str, smtp_port: int | None = None, **kw):
        proc = AppProcess(database_url, smtp_port or smtp.port, **kw)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait()
