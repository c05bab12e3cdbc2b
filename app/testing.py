"""Helpers that the tests and the benchmarks share (never the app itself):
a free port, a real SMTP server, the app served in a thread or under
gunicorn, a `flask mail worker` process, and a SQL statement counter.
"""

import asyncio
import email
import email.policy
import os
import socket
import subprocess
import sys
import threading
import time

import sqlalchemy as sa
from aiosmtpd.controller import Controller

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


class LiveServer:
    """The app served by a real WSGI server in a thread, on a free port."""

    def __init__(self, app, port: int):
        from werkzeug.serving import make_server  # dev server, tests only

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
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARTIFACTS = os.path.join(ROOT, 'test-artifacts')


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


class AppProcess:
    """The app under gunicorn in its own process group, as operators run it."""

    def __init__(self, database_url: str, smtp_port: int, workers: int = 1, **env):
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
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, 'ab')
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.ready():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f'{self.command[2]} did not start: see {self.log_path}')

    def ready(self) -> bool:
        try:
            socket.create_connection(('127.0.0.1', self.port), 0.5).close()
            return True
        except OSError:
            return False

    def terminate(self, timeout: float = 45) -> int:
        """SIGTERM, as a deploy or restart does; wait for a graceful exit."""
        self.process.terminate()
        code = self.process.wait(timeout)
        self.log.close()
        return code

    def output(self) -> str:
        with open(self.log_path, encoding='utf-8', errors='replace') as f:
            return f.read()


class MailWorkerProcess(AppProcess):
    """`flask mail worker` in its own process, as operators run it."""

    def __init__(self, database_url: str, smtp_port: int, **env):
        super().__init__(database_url, smtp_port, **env)
        self.log_path = self.log_path.replace('gunicorn-', 'mail-worker-')
        self.command = [sys.executable, '-m', 'flask', 'mail', 'worker']
        self.env['PYTHONUNBUFFERED'] = '1'

    def ready(self) -> bool:
        return 'outbox worker ' in self.output()
