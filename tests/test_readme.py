"""The README, true as written: its shell blocks run, its `flask shell`
snippet works, every setting is listed, and what it says of the pages holds
(profile titles, the confirmation flow, axe on the banner)."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from app.extensions import db
from app.models import User
from app.testing import PASSWORD, ROOT, AuthActions

AXE = os.path.join(ROOT, 'node_modules', 'axe-core', 'axe.min.js')


@pytest.mark.browser
@pytest.mark.parametrize('theme', ['light', 'dark'])
@pytest.mark.parametrize('width', [390, 1280])
def test_the_confirm_your_address_banner_passes_axe(browser, live_server, width, theme):
    """README, "Using it": axe finds nothing on any page, the banner of an
    account whose address is not confirmed yet included."""
    if not os.path.exists(AXE):
        pytest.skip(f'{AXE} not found: `make test` installs axe-core with npm')
    with live_server.app.app_context():
        user = User(username='dora', email='dora@example.com', email_confirmed=False)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
    context = browser.new_context(
        base_url=live_server.url, viewport={'width': width, 'height': 900},
        color_scheme=theme, bypass_csp=True,  # only to inject axe
    )  # fmt: skip
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto('/login')
    page.fill('input[name=username]', 'dora')
    page.fill('input[name=password]', PASSWORD)
    page.click('input[type=submit]')
    page.wait_for_url('**/index')
    assert page.locator('text=Confirm your email address').count() == 1
    page.add_script_tag(path=AXE)
    found = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag', values:
                ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})
            .then(r => r.violations.map(v => v.id + ': ' +
                v.nodes.map(n => n.target.join(' ')).join(', ')))"""
    )
    context.close()
    assert found == []


# ------------------------------------------------ every shell block, run

# Each documented command, or its safe stand-in: what starts a server for
# good is asked to load the app and stop (`--check-config`, `flask routes`),
# `make` targets are dry-run, installs are checked against what is installed.
STAND_INS = [
    (r'^python3? -m venv .*', ':'),  # the shared venv stands in for .venv
    (r'^pip install -r (\S+)$', r'test -f \1'),
    (r'^pip install (\w+)$', r'python -c "import \1"'),
    (r'^make (.*)$', r'make -n \1 > /dev/null'),
    (r'^flask run\b.*$', 'flask routes > /dev/null'),
    (r'^gunicorn (.*)$', r'gunicorn --check-config \1'),
    (r'^python -m aiosmtpd\b.*$', 'python -m aiosmtpd --help > /dev/null'),
    (r'^flask mail worker\b.*$', 'flask mail worker --help > /dev/null'),
    (r'^createdb\b.*$', 'createdb --help > /dev/null'),
]


def readme() -> str:
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def shell_blocks() -> list[str]:
    return re.findall(r'^```sh\n(.*?)^```', readme(), re.MULTILINE | re.DOTALL)


def stand_in(command: str, block: str) -> str:
    if command.startswith('flask db upgrade') and 'export DATABASE_URL' in block:
        # The documented database host is an example: load the app with the
        # documented settings and read the migrations, connecting nowhere.
        return 'flask db heads > /dev/null'
    for pattern, replacement in STAND_INS:
        if re.match(pattern, command):
            return re.sub(pattern, replacement, command)
    return command


def as_script(block: str) -> str:
    lines = []
    for line in block.replace('\\\n', ' ').splitlines():
        command = line.strip()
        if command.startswith('#') or not command:
            continue
        if ' && . .venv/bin/activate' in command:
            command = command.replace(' && . .venv/bin/activate', '')
        lines.append(stand_in(command, block))
    return 'set -euo pipefail\n' + '\n'.join(lines) + '\n'


def project_copy(tmp_path) -> str:
    copy = os.path.join(tmp_path, 'clone')
    skip = shutil.ignore_patterns(
        '.git', '.venv', 'node_modules', 'test-artifacts', '__pycache__', '*.db',
        '.env', 'logs', 'results', '.pytest_cache', '.ruff_cache',
    )  # fmt: skip
    shutil.copytree(ROOT, copy, ignore=skip)
    return copy


@pytest.mark.slow
def test_every_shell_block_of_the_readme_runs(tmp_path):
    copy = project_copy(tmp_path)
    env = {
        'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
        'HOME': str(tmp_path),
        'LANG': 'C.UTF-8',
    }
    blocks = shell_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        script = as_script(block)
        result = subprocess.run(
            ['bash', '-c', script], cwd=copy, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f'{block}\n{result.stderr[-2000:]}'
    # The by-hand steps left a working development checkout behind.
    assert os.path.exists(os.path.join(copy, 'app.db'))
    with open(os.path.join(copy, '.env'), encoding='utf-8') as f:
        assert re.search(r'^SECRET_KEY=\S{32,}$', f.read(), re.MULTILINE)


@pytest.mark.slow
def test_the_flask_shell_snippet_works_with_the_shipped_env(tmp_path, smtp):
    copy = project_copy(tmp_path)
    shutil.copy(os.path.join(copy, '.env.example'), os.path.join(copy, '.env'))
    snippet = re.search(r'^```python\n(.*?)^```', readme(), re.M | re.S)[1]
    env = {
        'PATH': os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'],
        'HOME': str(tmp_path),
        'MAIL_SERVER': '127.0.0.1',  # as the README says, `make mail` first
        'MAIL_PORT': str(smtp.port),
        'MAIL_SENDER_ENABLED': 'false',
    }
    flask = [sys.executable, '-m', 'flask']
    subprocess.run([*flask, 'db', 'upgrade'], cwd=copy, env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    result = subprocess.run(
        [*flask, 'shell'], input=snippet + '\n', cwd=copy, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert 'Error' not in result.stderr, result.stderr
    assert '[<User susan>]' in result.stdout + result.stderr
    assert smtp.take('test subject', 'you@example.com')


def test_every_setting_is_in_env_example_and_the_readme():
    with open(os.path.join(ROOT, 'config.py'), encoding='utf-8') as f:
        source = f.read()
    pattern = r"(?:env_\w+|os\.environ\.get)\(\s*'([A-Z_]+)'"
    names = set(re.findall(pattern, source)) - {'TEST_DATABASE_URL'}
    names.add('GUNICORN_ACCESS_LOG')
    with open(os.path.join(ROOT, '.env.example'), encoding='utf-8') as f:
        example = set(re.findall(r'^([A-Z_]+)=', f.read(), re.MULTILINE))
    table = set(re.findall(r'^\| `([A-Z_]+)`', readme(), re.MULTILINE))
    table |= set(re.findall(r'^\| `[A-Z_]+`, `([A-Z_]+)`', readme(), re.MULTILINE))
    assert names - example == set()
    assert names - table == set()
    assert not re.search(r'^[^#\n]*[=\s]\.\.\.(\s|$)', '\n'.join(shell_blocks()), re.M)


# ------------------------------------------------ what the README promises

CONFIRM_PATH = re.compile(r'https://microblog\.test(/confirm_email/[\w.-]+)')


def test_a_signed_out_person_who_confirms_is_sent_to_sign_in(client, smtp):
    AuthActions(client, smtp).register(confirm=False)
    client.get('/login')  # "Check your email" shown
    message = smtp.take('Confirm your email address', 'susan@example.com')
    path = CONFIRM_PATH.search(message.get_body(('plain',)).get_content())[1]
    assert client.get(path).location == '/confirm_email/confirm'
    assert client.post('/confirm_email/confirm').location == '/login'
    page = client.get('/login').data
    assert b'your email address is confirmed' in page
    assert b'Please log in' not in page


def test_profile_pages_are_titled_with_the_username(client, smtp):
    auth = AuthActions(client, smtp)
    auth.register()
    auth.login()
    assert b'<title>susan - Microblog</title>' in client.get('/user/susan').data
