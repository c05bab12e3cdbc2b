"""`make bench`: seed a database, serve it with gunicorn, load it with wrk.

    python -m benchmarks.run                      # 100,000 posts on SQLite
    python -m benchmarks.run --posts 1000000
    python -m benchmarks.run --sizes 10000,1000000  # several sizes, one run
    python -m benchmarks.run --database-url postgresql+psycopg://postgres@127.0.0.1/bench

Prints one Markdown table per size: req/s, p50, p99, errors (non-2xx/3xx
and socket errors), each page's ratio to the trivial-Flask ceiling and to
anonymous /login, and the SQL statements each page runs.
"""

import argparse
import os
import sys
import tempfile

import sqlalchemy as sa

from app import db
from app.testing import SMTPSink, StatementCounter
from benchmarks.common import (
    RESULTS,
    ROOT,
    Browser,
    Gunicorn,
    app_env,
    ensure_wrk,
    form_post_script,
    local_app,
    login,
    lua_script,
    run_wrk,
)
from benchmarks.seed import PASSWORD, seed


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist."""
    parsed = sa.make_url(url)
    if not parsed.drivername.startswith('postgresql'):
        return
    admin = sa.create_engine(
        parsed.set(database='postgres'), isolation_level='AUTOCOMMIT'
    )
    with admin.connect() as conn:
        exists = conn.scalar(
            sa.text('SELECT 1 FROM pg_database WHERE datname = :n'),
            {'n': parsed.database},
        )
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def statements_per_page(app, pages: list[str]) -> dict[str, int]:
    client = app.test_client()
    client.post('/login', data={'username': 'user0', 'password': PASSWORD})
    client.get('/index')  # last_seen written now, not during the count
    with app.app_context():
        engine = db.engine
    counts = {}
    for page in pages:
        if page.startswith('POST'):
            continue
        with StatementCounter(engine) as counter:
            response = client.get(page)
        assert response.status_code == 200, (page, response.status_code)
        counts[page] = counter.count
    return counts


def count_posts(app) -> int:
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).select_from(sa.table('post')))
        db.engine.dispose()
    return n


def benchmark_size(args, posts: int, smtp_port: int) -> list[dict]:
    url = args.database_url or f'sqlite:///{RESULTS}/bench-{posts}.db'
    ensure_database(url)
    app = local_app(url)
    seconds = seed(app, args.users, args.follows, posts)
    backend = sa.make_url(url).get_backend_name()
    print(
        f'\nSeeded {args.users} users, {args.follows} follows each, {posts} posts '
        f'in {seconds:.1f}s ({backend})',
        flush=True,
    )
    pages = ['/explore', '/explore?page=2000', '/index', '/user/user1']
    sql = statements_per_page(app, pages)
    with app.app_context():
        db.engine.dispose()

    results = []
    scripts = tempfile.mkdtemp(prefix='wrk-', dir=RESULTS)
    duration = args.duration
    with Gunicorn('ceiling:app', {}, cwd=os.path.join(ROOT, 'benchmarks')) as ceiling:
        results.append(
            ('trivial Flask (ceiling)', run_wrk(ceiling.url + '/', duration))
        )
    with Gunicorn('microblog:app', app_env(url, smtp_port)) as server:
        anonymous = run_wrk(server.url + '/login', duration)
        results.append(('anonymous GET /login', anonymous))
        reader = login(server.url, 'user0', PASSWORD)
        get = lua_script(
            os.path.join(scripts, 'get.lua'), cookie=reader.cookie_header()
        )
        for page in pages:
            results.append((f'GET {page}', run_wrk(server.url + page, duration, get)))

        write = form_post_script(
            os.path.join(scripts, 'write.lua'),
            reader,
            '/index',
            '"post=bench+write+" .. counter .. "-" .. math.random(1000000000)',
        )
        before = count_posts(app)
        writes = run_wrk(server.url + '/index', args.write_duration, write)
        writes['stored'] = count_posts(app) - before
        results.append((f'POST /index ({args.write_duration}s of writes)', writes))

        # Half the addresses belong to an account, half do not.
        email = f'"user" .. math.random(0, {2 * args.users - 1}) .. "%40example.com"'
        url = server.url + '/reset_password_request'
        reset = form_post_script(
            os.path.join(scripts, 'reset.lua'),
            Browser(server.url),
            '/reset_password_request',
            f'"email=" .. {email}',
        )
        results.append(('POST /reset_password_request', run_wrk(url, duration, reset)))
    return [
        {'page': name, **r, 'sql': sql.get(name.removeprefix('GET '), '')}
        for name, r in results
    ]


def print_table(posts: int, rows: list[dict]) -> None:
    ceiling = rows[0]['rps']
    login_rps = rows[1]['rps']
    print(f'\n### {posts:,} posts\n')
    print('| page | req/s | p50 ms | p99 ms | errors | vs ceiling | vs /login | SQL |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for r in rows:
        print(
            f'| {r["page"]} | {r["rps"]:.0f} | {r["p50"]:.2f} | {r["p99"]:.2f} '
            f'| {r["errors"]} | {r["rps"] / ceiling:.2f} '
            f'| {r["rps"] / login_rps:.2f} | {r["sql"]} |'
        )
    for r in rows:
        if 'stored' in r:
            accepted = r['requests'] - r['errors']
            verdict = 'all stored' if r['stored'] >= accepted else 'POSTS MISSING'
            print(
                f'\nWrites: {r["requests"]} requests, {r["errors"]} errors, '
                f'{accepted} accepted, {r["stored"]} posts stored ({verdict}).'
            )
    sys.stdout.flush()


def print_targets(by_size: dict[int, list[dict]]) -> None:
    sizes = sorted(by_size)
    big = {r['page']: r for r in by_size[sizes[-1]]}
    login = big['anonymous GET /login']
    explore = big['GET /explore']
    reset = big['POST /reset_password_request']
    checks = [
        (
            '/index req/s / /login req/s',
            big['GET /index']['rps'] / login['rps'],
            '>=',
            0.30,
        ),
        ('/explore req/s / /login req/s', explore['rps'] / login['rps'], '>=', 0.30),
        (
            '/explore?page=2000 req/s / /explore req/s',
            big['GET /explore?page=2000']['rps'] / explore['rps'],
            '>=',
            0.50,
        ),
        ('reset POST p50 / /login p50', reset['p50'] / login['p50'], '<=', 1.5),
    ]
    if len(sizes) > 1:
        small = {r['page']: r for r in by_size[sizes[0]]}
        for page in ('GET /index', 'GET /explore'):
            name = f'{page} p50 at {sizes[-1]:,} / at {sizes[0]:,} posts'
            checks.append((name, big[page]['p50'] / small[page]['p50'], '<=', 1.25))
    worst = max(r['sql'] for rows in by_size.values() for r in rows if r['sql'] != '')
    checks.append(('SQL statements per list page (max)', worst, '<=', 4))
    w = next(r for r in by_size[sizes[-1]] if 'stored' in r)
    checks.append(('write errors', w['errors'], '<=', 0))
    accepted = w['requests'] - w['errors']
    checks.append(('posts stored / writes accepted', w['stored'] / accepted, '>=', 1))
    print(f'\n### Targets at {sizes[-1]:,} posts\n')
    print('| target | measured | goal | met |')
    print('|---|---:|---:|---|')
    for name, value, op, goal in checks:
        met = value >= goal if op == '>=' else value <= goal
        print(f'| {name} | {value:.2f} | {op} {goal} | {"yes" if met else "NO"} |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--posts', type=int, default=100_000)
    parser.add_argument(
        '--sizes', help='comma-separated post counts, e.g. 10000,1000000'
    )
    parser.add_argument('--users', type=int, default=1000)
    parser.add_argument('--follows', type=int, default=50)
    parser.add_argument('--duration', type=int, default=10, help='seconds per page')
    parser.add_argument('--write-duration', type=int, default=30)
    parser.add_argument('--database-url', help='default: a SQLite file per size')
    args = parser.parse_args()
    ensure_wrk()
    os.makedirs(RESULTS, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(',')] if args.sizes else [args.posts]

    sink = SMTPSink().start()  # receives the reset emails
    try:
        by_size = {}
        for posts in sizes:
            by_size[posts] = benchmark_size(args, posts, sink.port)
            print_table(posts, by_size[posts])
        print_targets(by_size)
        print(f'\nReset emails received by the SMTP sink: {len(sink.messages)}')
    finally:
        sink.stop()


if __name__ == '__main__':
    main()
