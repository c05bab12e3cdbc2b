"""Download your data (issue 26 point 1): a ZIP of everything the account
holds, after a recent proof of identity, streamed in constant memory and
recorded in the security log."""

import io
import json
import tracemalloc
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app import db
from app.dbtypes import utcnow
from app.models import Post, User
from app.sessions import UserSession
from app.testing import AuthActions
from app.testing.data import add_posts, make_user

WINDOW = {'REAUTH_WINDOW': 600}
FILES = {
    'README.txt',
    'account.json',
    'posts.json',
    'following.json',
    'followers.json',
    'sessions.json',
    'security_log.json',
}


def download(client) -> zipfile.ZipFile:
    response = client.post('/export')
    assert response.status_code == 200
    assert response.mimetype == 'application/zip'
    return zipfile.ZipFile(io.BytesIO(response.data))


def read(archive: zipfile.ZipFile, name: str):
    return json.loads(archive.read(name))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec='seconds').replace('+00:00', 'Z')


@pytest.fixture
def susan(make_app):
    """Susan with posts, one account she follows and one following her,
    signed in (a fresh proof) in a client."""
    app = make_app(**WINDOW)
    with app.app_context():
        susan, john, amy = (make_user(n) for n in ('susan', 'john', 'amy'))
        add_posts(susan, 7)
        add_posts(john, 2)
        susan.follow(john)
        amy.follow(susan)
        db.session.commit()
    client = app.test_client()
    assert AuthActions(client).login().status_code == 302
    return app, client


def test_the_export_holds_everything_as_in_the_database(susan):
    app, client = susan
    response = client.post('/export')
    today = utcnow().strftime('%Y-%m-%d')
    disposition = response.headers['Content-Disposition']
    assert disposition.startswith('attachment;')
    assert f'microblog-susan-{today}.zip' in disposition
    assert response.headers['Cache-Control'] == 'no-store'
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert set(archive.namelist()) == FILES
    assert archive.testzip() is None
    with app.app_context():
        user = User.by_username('susan')
        posts = db.session.scalars(
            sa.select(Post)
            .where(Post.user_id == user.id)
            .order_by(Post.timestamp.desc(), Post.id.desc())
        ).all()
        expected_posts = [
            {'id': p.id, 'body': p.body, 'timestamp': iso(p.timestamp)} for p in posts
        ]
        sessions = db.session.scalars(
            sa.select(UserSession).where(UserSession.user_id == user.id)
        ).all()
    assert read(archive, 'posts.json') == expected_posts
    assert expected_posts[0]['timestamp'] == '2026-01-01T00:06:00Z'
    assert read(archive, 'following.json') == [{'username': 'john'}]
    assert read(archive, 'followers.json') == [{'username': 'amy'}]
    account = read(archive, 'account.json')
    assert account['username'] == 'susan'
    assert account['email'] == 'susan@example.com' and account['email_confirmed']
    assert len(read(archive, 'sessions.json')) == len(sessions) == 1
    assert read(archive, 'sessions.json')[0]['address'] == '127.0.0.x'
    log = read(archive, 'security_log.json')
    assert [e['event'] for e in log] == ['export', 'login']
    readme = archive.read('README.txt').decode()
    assert all(name in readme for name in FILES - {'README.txt'})
    # Nothing secret leaves: no hash, no token.
    everything = b''.join(archive.read(n) for n in archive.namelist())
    assert b'password_hash' not in everything and b'token' not in everything
    assert user.password_hash.encode() not in everything


def test_the_export_is_recorded_in_the_security_log(susan):
    app, client = susan
    download(client)
    page = client.get('/security_log').get_data(as_text=True)
    assert 'Your data was downloaded' in page


def test_the_export_needs_a_recent_proof(susan):
    app, client = susan
    with app.app_context():
        db.session.execute(
            sa.update(UserSession).values(proven_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
    for response in (client.get('/export'), client.post('/export')):
        assert response.status_code == 302
        assert response.location.startswith('/reauthenticate?next=/export')
    with app.app_context():
        assert 'export' not in [
            e for e in db.session.scalars(sa.text('SELECT event FROM security_event'))
        ]


def test_the_page_explains_and_a_stranger_is_sent_to_sign_in(susan):
    app, client = susan
    page = client.get('/export')
    assert page.status_code == 200 and b'posts.json' in page.data
    assert app.test_client().post('/export').status_code == 302


def test_a_username_in_any_script_names_the_file(make_app):
    app = make_app(**WINDOW)
    with app.app_context():
        make_user('élodie')
    client = app.test_client()
    AuthActions(client).login('élodie')
    disposition = client.post('/export').headers['Content-Disposition']
    assert 'filename="microblog-_lodie-' in disposition
    assert "filename*=UTF-8''microblog-%C3%A9lodie-" in disposition


def export_peak(client) -> tuple[int, int]:
    """(posts exported, peak bytes allocated while streaming)."""
    tracemalloc.start()
    try:
        response = client.post('/export', buffered=False)
        sink = io.BytesIO()
        for chunk in response.iter_encoded():
            sink.write(chunk)
            sink.seek(0)
            sink.truncate()  # keep nothing: only the export's own memory counts
        response.close()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def insert_posts(app, author_id: int, n: int, start: int) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with app.app_context():
        rows = [
            {
                'body': f'post number {i} ' + 'x' * 100,
                'timestamp': base + timedelta(seconds=i),
                'user_id': author_id,
            }
            for i in range(start, start + n)
        ]
        db.session.execute(sa.insert(Post), rows)
        db.session.commit()


@pytest.mark.slow
def test_100000_posts_export_in_constant_memory(make_app):
    """The peak while streaming 100,000 posts is about that of 10,000: the
    archive and the posts are never held whole (held whole, 100,000 posts
    take about ten times the memory)."""
    app = make_app(**WINDOW)
    with app.app_context():
        author = make_user().id
    client = app.test_client()
    AuthActions(client).login()
    insert_posts(app, author, 10_000, 0)
    small = export_peak(client)
    insert_posts(app, author, 90_000, 10_000)
    large = export_peak(client)
    assert large < 2 * small, (small, large)
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Post))
    assert count == 100_000
    archive = download(client)
    assert len(read(archive, 'posts.json')) == 100_000
