"""Starting in production: every mistake is one line and exit 1; logs an
operator can read (each line once, error mail throttled and off the request
thread, the rate-limit store's fall-back said once, unknown hosts named).

The process tests run the real commands (`flask db upgrade`, `flask run`,
gunicorn) in a subprocess with a controlled environment, from the project
folder, which has no `.env`.
"""

import json
import logging
import os
import re
import shutil
import smtplib
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from app import create_app, db
from app.outbox import OutboxMessage
from app.testing import ROOT, AuthActions, SMTPSink, free_port
from config import TestConfig

GOOD = {
    'APP_ENV': 'production',
    'SECRET_KEY': 'start-test-secret-key-0123456789abcdefgh',
    'SERVER_NAME': 'microblog.example.com',
    'PREFERRED_URL_SCHEME': 'https',
    'LOG_TO_STDOUT': 'true',
    'MAIL_SENDER_ENABLED': 'false',
}
GUNICORN_OWN_LINE = re.compile(r'^\[[^\]]+\] \[\d+\] \[INFO\] ')

# id: (settings that differ from GOOD, None unsets; what the line must name)
MISTAKES = {
    'weak-key': ({'SECRET_KEY': 'change-me'}, 'SECRET_KEY'),
    'no-server-name': ({'SERVER_NAME': None}, 'SERVER_NAME'),
    'localhost': ({'SERVER_NAME': 'localhost:5000'}, 'SERVER_NAME'),
    'loopback': ({'SERVER_NAME': '127.0.0.1:8000'}, 'SERVER_NAME'),
    'url-as-name': ({'SERVER_NAME': 'https://microblog.example.com'}, 'SERVER_NAME'),
    'http': ({'PREFERRED_URL_SCHEME': 'http'}, 'PREFERRED_URL_SCHEME=https'),
    'unknown-env': ({'APP_ENV': 'staging'}, 'APP_ENV'),
    'not-a-url': ({'DATABASE_URL': 'notaurl'}, 'DATABASE_URL'),
    'postgres-scheme': ({'DATABASE_URL': 'postgres://u@db/x'}, 'postgresql+psycopg://'),
    'unsupported-db': ({'DATABASE_URL': 'mysql://u@db/x'}, 'DATABASE_URL'),
    'sqlite-no-folder': (
        {'DATABASE_URL': 'sqlite:////nonexistent-folder/app.db'},
        'DATABASE_URL',
    ),
    'sqlite-under-a-file': (
        {'DATABASE_URL': f'sqlite:///{ROOT}/README.md/app.db'},
        'DATABASE_URL',
    ),
    'mail-port': ({'MAIL_PORT': 'abc'}, 'MAIL_PORT'),
    'mail-tls': ({'MAIL_USE_TLS': 'maybe'}, 'MAIL_USE_TLS'),
    'tls-and-ssl': ({'MAIL_USE_TLS': 'true', 'MAIL_USE_SSL': 'on'}, 'MAIL_USE_SSL'),
    'ratelimit-store': (
        {'RATELIMIT_STORAGE_URI': 'bogus://x'},
        'RATELIMIT_STORAGE_URI',
    ),
}


def run(command: list[str], settings: dict, tmp_path, timeout: float = 90):
    env = {
        'PATH': os.environ['PATH'],
        'HOME': str(tmp_path),
        'LANG': 'C.UTF-8',
        'DATABASE_URL': f'sqlite:///{tmp_path}/app.db',
        **GOOD,
        **settings,
    }
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def commands(name: str) -> list[str]:
    port = str(free_port())
    return {
        'flask db upgrade': [sys.executable, '-m', 'flask', 'db', 'upgrade'],
        'flask run': [sys.executable, '-m', 'flask', 'run', '--port', port],
        'gunicorn': [
            sys.executable,
            '-m',
            'gunicorn',
            '-b',
            f'127.0.0.1:{port}',
            'microblog:app',
        ],  # fmt: skip
    }[name]


def error_lines(result) -> list[str]:
    """Every line printed, less gunicorn's own start-up lines."""
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if not GUNICORN_OWN_LINE.match(line)]


@pytest.mark.slow
@pytest.mark.parametrize('command', ['flask db upgrade', 'gunicorn'])
@pytest.mark.parametrize('mistake', MISTAKES, ids=list(MISTAKES))
def test_a_start_up_mistake_is_one_line_and_exit_1(mistake, command, tmp_path):
    settings, names = MISTAKES[mistake]
    result = run(commands(command), settings, tmp_path)
    lines = error_lines(result)
    assert result.returncode == 1, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith('Error: ') and names in lines[0]
    assert 'Traceback' not in result.stderr + result.stdout


@pytest.mark.slow
def test_flask_run_refuses_in_one_line_too(tmp_path):
    result = run(commands('flask run'), {'SERVER_NAME': 'localhost:5000'}, tmp_path)
    assert result.returncode == 1
    assert error_lines(result) == [
        line for line in error_lines(result) if 'SERVER_NAME=localhost' in line
    ]
    assert len(error_lines(result)) == 1


@pytest.mark.slow
def test_good_settings_pass_and_a_local_trial_is_allowed(tmp_path):
    assert run(commands('flask db upgrade'), {}, tmp_path).returncode == 0
    trial = {'SERVER_NAME': '127.0.0.1:8000', 'PREFERRED_URL_SCHEME': 'http',
             'INSECURE_LOCAL_PRODUCTION': 'true'}  # fmt: skip
    result = run(commands('flask db upgrade'), trial, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize('where', ['down', 'missing'])
def test_flask_db_upgrade_says_the_database_is_not_there_in_one_line(where, tmp_path):
    if where == 'down':
        url = f'postgresql+psycopg://postgres@127.0.0.1:{free_port()}/microblog'
    else:
        url = missing_postgres_database()
    result = run(commands('flask db upgrade'), {'DATABASE_URL': url}, tmp_path)
    lines = error_lines(result)
    assert result.returncode == 1
    assert len(lines) == 1, lines
    assert 'DATABASE_URL' in lines[0] and 'does not answer' in lines[0]


def missing_postgres_database() -> str:
    """A database that does not exist on the test server (skip without one)."""
    base = os.environ.get('TEST_DATABASE_URL', '')
    if not base.startswith('postgresql'):
        pytest.skip('needs TEST_DATABASE_URL on PostgreSQL')
    url = sa.engine.make_url(base)
    return url.set(database=f'{url.database}_missing').render_as_string(False)


def test_blank_means_default_for_every_setting(tmp_path):
    """Every variable of .env.example left blank reads as if unset."""
    names = env_example_names()
    probe = (
        'import json, config; c = config.Config; '
        'print(json.dumps({k: repr(getattr(c, k)) for k in dir(c) '
        "if k.isupper() and k != 'SECRET_KEY'}))"
    )
    base = {'PATH': os.environ['PATH'], 'APP_ENV': 'development', 'HOME': str(tmp_path)}
    command = [sys.executable, '-W', 'ignore', '-c', probe]
    unset = subprocess.run(
        command, cwd=ROOT, env=base, capture_output=True, text=True, check=True
    )
    blanks = {**base, **{name: '' for name in names if name != 'APP_ENV'}}
    blank = subprocess.run(
        command, cwd=ROOT, env=blanks, capture_output=True, text=True, check=True
    )
    assert blank.stdout == unset.stdout
    assert json.loads(blank.stdout)['PREFERRED_URL_SCHEME'] == "'http'"


def env_example_names() -> list[str]:
    with open(os.path.join(ROOT, '.env.example'), encoding='utf-8') as f:
        return re.findall(r'^([A-Z_]+)=', f.read(), re.MULTILINE)


def production(**overrides) -> type:
    settings = {
        'APP_ENV': 'production',
        'TESTING': False,
        'SECRET_KEY': GOOD['SECRET_KEY'],
        'SERVER_NAME': 'microblog.example.com',
        'TRUSTED_HOSTS': None,
        'MAIL_SENDER_ENABLED': False,
        'LOG_TO_STDOUT': True,
        **overrides,
    }
    return type('ProductionConfig', (TestConfig,), settings)


def test_each_log_line_appears_once(capsys):
    app = create_app(production(SQLALCHEMY_DATABASE_URI='sqlite://'))
    app.logger.warning('one line, once')
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count('one line, once') == 1


def test_an_unknown_host_is_logged_once_per_host(caplog):
    app = create_app(production(SQLALCHEMY_DATABASE_URI='sqlite://'))
    client = app.test_client()
    caplog.set_level(logging.WARNING)
    for host in ('evil.example', 'evil.example', 'other.example'):
        assert client.get('/login', headers={'Host': host}).status_code == 400
    notes = [r.getMessage() for r in caplog.records if 'Refused' in r.getMessage()]
    assert len(notes) == 2
    assert "'evil.example'" in notes[0] and 'microblog.example.com' in notes[0]


class HeldSMTP(SMTPSink):
    """An SMTP sink that answers nobody until the test lets it."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        handle = self.handler.handle_DATA

        async def held(server, session, envelope):
            while not self.release.is_set():
                await __import__('asyncio').sleep(0.05)
            return await handle(server, session, envelope)

        self.handler.handle_DATA = held


def test_error_mail_leaves_the_request_thread_once_per_error(tmp_path):
    sink = HeldSMTP().start()
    try:
        app = create_app(
            production(
                SQLALCHEMY_DATABASE_URI=f'sqlite:///{tmp_path}/a.db',
                MAIL_PORT=sink.port,
                ADMINS=['ops@example.com'],
            )
        )

        @app.route('/boom/<int:n>')
        def boom(n):
            raise (ValueError if n % 2 else KeyError)(f'broken {n}')

        client = app.test_client()
        # The mail server holds every message: a request that mailed
        # synchronously would not return before it is released.
        statuses = [client.get(f'/boom/{n}').status_code for n in range(6)]
        assert statuses == [500] * 6
        assert sink.messages == []
        sink.release.set()
        messages = sink.wait_for(2)
        subjects = sorted(m['Subject'] for m in messages)
        assert 'Exception on /boom/0' in subjects[0]
        assert 'Exception on /boom/1' in subjects[1]
        assert 'KeyError' in str(messages[0].get_content()) + str(
            messages[1].get_content()
        )
        handler = next(h for h in app.logger.handlers if hasattr(h, 'outbox'))
        handler.outbox.join()  # everything handed to the mail thread is sent
        assert len(sink.messages) == 2  # four repeats within 10 minutes: none
    finally:
        sink.stop()


def test_error_mail_only_in_production(make_app):
    app = make_app(APP_ENV='development', TESTING=False, LOG_TO_STDOUT=True)
    assert not [h for h in app.logger.handlers if hasattr(h, 'outbox')]


def test_error_mail_can_use_implicit_tls(monkeypatch, tmp_path):
    app = create_app(
        production(
            SQLALCHEMY_DATABASE_URI='sqlite://', MAIL_SERVER='smtp.example.com',
            MAIL_PORT=465, MAIL_USE_SSL=True, MAIL_USE_TLS=False, MAIL_TIMEOUT=7,
            ADMINS=['ops@example.com'],
        )
    )  # fmt: skip
    used = []

    class FakeSSL:
        def __init__(self, host, port, timeout):
            used.append((host, port, timeout))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_message(self, message):
            used.append(message['To'])

    monkeypatch.setattr(smtplib, 'SMTP_SSL', FakeSSL)
    handler = next(h for h in app.logger.handlers if hasattr(h, 'outbox'))
    handler.send('subject', 'body')
    assert used == [('smtp.example.com', 465, 7), 'ops@example.com']


def test_rate_limit_store_fall_back_is_logged_once_with_its_address(make_app, caplog):
    from app.extensions import limiter

    port = free_port()
    down = f'redis://:hunter2secret@127.0.0.1:{port}/13'
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=down,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        LOGIN_RATE_LIMIT='50/minute',
    )
    caplog.set_level(logging.INFO)
    try:
        client = app.test_client()
        for _ in range(3):
            assert AuthActions(client).login('nobody', 'wrong one!').status_code == 200
    finally:
        limiter._storage_dead = False
        limiter._in_memory_fallback_enabled = False
    notes = [r for r in caplog.records if 'Rate-limit store' in r.getMessage()]
    assert len(notes) == 1 and notes[0].name == app.logger.name
    text = notes[0].getMessage()
    assert f'redis://:***@127.0.0.1:{port}/13' in text
    assert 'hunter2secret' not in caplog.text


def test_send_test_says_printed_to_the_console(make_app, capsys):
    app = make_app(APP_ENV='development', MAIL_SERVER=None, MAIL_SENDER_ENABLED=False)
    result = app.test_cli_runner().invoke(args=['mail', 'send-test', 'a@example.com'])
    assert result.exit_code == 0, result.output
    assert 'printed to the console' in result.output
    assert 'sent to the mail server' not in result.output


def test_send_test_without_a_mail_server_in_production_queues_nothing(make_app):
    app = make_app(APP_ENV='production', MAIL_SERVER=None, MAIL_SENDER_ENABLED=False)
    result = app.test_cli_runner().invoke(args=['mail', 'send-test', 'a@example.com'])
    assert result.exit_code == 1
    assert 'MAIL_SERVER is not set' in result.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    'line, shown', [('GUNICORN_ACCESS_LOG=/var/log/x.log', '/var/log/x.log'),
                    ('GUNICORN_ACCESS_LOG=', '-'), ('GUNICORN_ACCESS_LOG=off', 'None')],
)  # fmt: skip
def test_gunicorn_reads_its_access_log_setting_from_env_file(line, shown, tmp_path):
    shutil.copy(os.path.join(ROOT, 'gunicorn.conf.py'), tmp_path)
    (tmp_path / '.env').write_text(line + '\n')
    env = {'PATH': os.environ['PATH'], 'HOME': str(tmp_path)}
    result = subprocess.run(
        [sys.executable, '-m', 'gunicorn', '--print-config', 'none:app'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert re.search(rf'^accesslog\s+= {re.escape(shown)}$', result.stdout, re.M)


def wait_for_line(command: list[str], env: dict, text: str) -> str:
    """Start `command`, return its output once `text` appears (or it ends)."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)  # fmt: skip
    seen = []
    guard = threading.Timer(60, process.terminate)  # never hang the suite
    guard.start()
    try:
        for line in process.stdout:
            seen.append(line)
            if text in line:
                break
    finally:
        guard.cancel()
        process.terminate()
        process.wait(30)
    return ''.join(seen)


@pytest.mark.slow
@pytest.mark.parametrize('server', ['gunicorn', 'flask run --host 0.0.0.0'])
def test_a_development_configuration_served_to_others_warns_loudly(server, tmp_path):
    port = str(free_port())
    command = {
        'gunicorn': [sys.executable, '-m', 'gunicorn', '-b', f'127.0.0.1:{port}',
                     'microblog:app'],
        'flask run --host 0.0.0.0': [sys.executable, '-m', 'flask', 'run', '--host',
                                     '0.0.0.0', '--port', port],
    }[server]  # fmt: skip
    env = {
        'PATH': os.environ['PATH'], 'HOME': str(tmp_path), 'APP_ENV': 'development',
        'DATABASE_URL': f'sqlite:///{tmp_path}/dev.db', 'LOG_TO_STDOUT': 'true',
        'MAIL_SENDER_ENABLED': 'false', 'PYTHONUNBUFFERED': '1',
    }  # fmt: skip
    output = wait_for_line(command, env, 'APP_ENV=development')
    assert 'APP_ENV=development' in output
    assert 'APP_ENV=production' in output  # and says what to set


@pytest.mark.slow
def test_an_app_that_fails_to_load_gets_no_second_traceback(tmp_path):
    """gunicorn's worker_exit hook runs even when the app never loaded."""
    command = [sys.executable, '-m', 'gunicorn', '-b', f'127.0.0.1:{free_port()}',
               'microblog:no_such_app']  # fmt: skip
    result = run(command, {}, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Failed to find attribute 'no_such_app'" in output
    assert 'Exception during worker exit' not in output
    assert 'Traceback' not in output
