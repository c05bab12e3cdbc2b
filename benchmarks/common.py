"""Helpers shared by the benchmark scripts: servers, sessions, wrk."""

import http.cookiejar
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from app import create_app
from app.testing import free_port
from config import TestConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'benchmarks', 'results')


def ensure_wrk() -> str:
    path = shutil.which('wrk')
    if path:
        return path
    if os.geteuid() == 0 and shutil.which('apt-get'):
        env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
        subprocess.run(['apt-get', 'update', '-qq'], check=True, env=env)
        subprocess.run(['apt-get', 'install', '-y', '-qq', 'wrk'], check=True, env=env)
        return shutil.which('wrk')
    raise SystemExit('wrk is missing: install it (apt-get install wrk) and retry')


class Gunicorn:
    """A gunicorn server on loopback, started and stopped by the benchmark."""

    def __init__(self, target: str, env: dict, workers: int = 2, cwd: str = ROOT):
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.target = target
        self.workers = workers
        self.cwd = cwd
        self.env = {
            **os.environ,
            **env,
            'SERVER_NAME': f'127.0.0.1:{self.port}',
            'GUNICORN_ACCESS_LOG': 'off',  # measure the app, not the access log
        }
        self.process = None

    def __enter__(self) -> 'Gunicorn':
        os.makedirs(RESULTS, exist_ok=True)
        self.log = open(os.path.join(RESULTS, 'gunicorn.log'), 'ab')
        command = [
            sys.executable, '-m', 'gunicorn', '-w', str(self.workers),
            '-b', f'127.0.0.1:{self.port}', '--backlog', '2048', self.target,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, cwd=self.cwd, env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(('127.0.0.1', self.port), 0.5).close()
                time.sleep(0.5)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(
            'gunicorn did not start; see benchmarks/results/gunicorn.log'
        )

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


# Sent by the Browser and by every wrk script: Flask-Login ties a session to
# its browser and marks it not fresh (re-signing the cookie on each request)
# when the User-Agent changes, which one browser's requests never do.
USER_AGENT = 'microblog-bench/1.0'


class Browser:
    """A cookie-keeping HTTP client that can fill in the CSRF token."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar)
        )
        self.opener.addheaders = [('User-Agent', USER_AGENT)]

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path) as response:
            return response.read().decode()

    def csrf_token(self, path: str) -> str:
        page = self.get(path)
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]

    def post(self, path: str, data: dict) -> int:
        body = urllib.parse.urlencode(data).encode()
        with self.opener.open(self.base + path, body) as response:
            response.read()
            return response.status

    def cookie_header(self) -> str:
        return '; '.join(f'{c.name}={c.value}' for c in self.jar)


def login(base: str, username: str, password: str) -> Browser:
    browser = Browser(base)
    token = browser.csrf_token('/login')
    browser.post(
        '/login', {'csrf_token': token, 'username': username, 'password': password}
    )
    return browser


UNITS = {'us': 0.001, 'ms': 1.0, 's': 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r'([\d.]+)(us|ms|s)', text).groups()
    return float(number) * UNITS[unit]


def run_wrk(
    url: str,
    duration: int,
    script: str | None = None,
    connections: int = 8,
    threads: int = 2,
) -> dict:
    """Load `url` with wrk; req/s, p50/p99 in ms, and errors (non-2xx/3xx
    responses plus socket errors)."""
    command = [ensure_wrk(), f'-t{threads}', f'-c{connections}', f'-d{duration}s']
    command += ['--latency', '--timeout', '10s']
    if script:
        command += ['-s', script]  # sets the User-Agent too
    else:
        command += ['-H', f'User-Agent: {USER_AGENT}']
    command.append(url)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = {
        'rps': float(re.search(r'Requests/sec:\s+([\d.]+)', out)[1]),
        'p50': _ms(re.search(r'\s50%\s+(\S+)', out)[1]),
        'p99': _ms(re.search(r'\s99%\s+(\S+)', out)[1]),
        'requests': int(re.search(r'(\d+) requests in', out)[1]),
        'errors': 0,
    }
    bad = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if bad:
        result['errors'] += int(bad[1])
    sock = re.search(
        r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out
    )
    if sock:
        result['errors'] += sum(int(x) for x in sock.groups())
    return result


def lua_script(
    path: str,
    method: str = 'GET',
    cookie: str | None = None,
    per_request: str | None = None,
) -> str:
    """Write a wrk script; `per_request` is a Lua expression for the body."""
    lines = [f'wrk.method = "{method}"', f'wrk.headers["User-Agent"] = "{USER_AGENT}"']
    if cookie:
        lines.append(f'wrk.headers["Cookie"] = "{cookie}"')
    if method == 'POST':
        lines.append(
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"'
        )
    if per_request:
        lines += [
            'counter = 0',
            'request = function()',
            '  counter = counter + 1',
            f'  return wrk.format(nil, nil, nil, {per_request})',
            'end',
        ]
    os.makedirs(RESULTS, exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def form_post_script(path: str, browser: Browser, form: str, fields: str) -> str:
    """A wrk script POSTing to `form` as `browser` would: its cookie and CSRF
    token, plus `fields`, a Lua expression for the rest of the body."""
    token = browser.csrf_token(form)
    return lua_script(
        path,
        'POST',
        cookie=browser.cookie_header(),
        per_request=f'"csrf_token={token}&" .. {fields}',
    )


def app_env(database_url: str, smtp_port: int) -> dict:
    return {
        'APP_ENV': 'production',
        'INSECURE_LOCAL_PRODUCTION': 'true',  # loopback and plain http
        'SECRET_KEY': 'benchmark-secret-key-0123456789abcdefghij',
        'PREFERRED_URL_SCHEME': 'http',
        'DATABASE_URL': database_url,
        'MAIL_SERVER': '127.0.0.1',
        'MAIL_PORT': str(smtp_port),
        'RATELIMIT_ENABLED': 'false',  # measure the app, not the limiter
        'LOG_TO_STDOUT': 'true',
        'POSTS_PER_PAGE': '25',
        'GRAVATAR': 'true',
    }


def local_app(database_url: str, **overrides):
    settings = {
        'APP_ENV': 'testing',
        'SQLALCHEMY_DATABASE_URI': database_url,
        'SECRET_KEY': 'benchmark-secret-key-0123456789abcdefghij',
        'SERVER_NAME': 'localhost',
        'MAIL_SENDER_ENABLED': False,
        'WTF_CSRF_ENABLED': False,
        'RATELIMIT_ENABLED': False,
        'POSTS_PER_PAGE': 25,
        # Seeding a million posts runs statements longer than a request may.
        'DATABASE_STATEMENT_TIMEOUT': 0,
        **overrides,
    }
    return create_app(type('BenchConfig', (TestConfig,), settings))
