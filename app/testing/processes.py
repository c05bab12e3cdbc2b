"""The app served for real: in a thread, under gunicorn, as a mail worker;
and the browser settings for the Chromium tests."""

import os
import socket
import subprocess
import sys
import threading
import time

from app.testing.smtp import free_port


class LiveServer:
    """The app served by a real WSGI server in a thread, on a free port;
    `host` is the name the browser uses (passkeys need `localhost`: an IP
    address cannot be a relying party)."""

    def __init__(self, app, port: int, host: str = '127.0.0.1'):
        from werkzeug.serving import make_server  # dev server, tests only

        self.app = app
        self.port = port
        self.url = f'http://{host}:{port}'
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
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
            'INSECURE_LOCAL_PRODUCTION': 'true',  # loopback and plain http
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
