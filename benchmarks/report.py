"""What `make bench` prints: a table per run, then the targets."""

import statistics
import sys

from app import db
from app.testing import StatementCounter
from benchmarks.seed import PASSWORD

LIST_PAGES = {  # page: its req/s at least this share of anonymous /login
    'GET /index': 0.5,
    'GET /explore': 0.7,
    'GET /user/user1': 0.6,
    'GET /explore?page=2000': 0.5,
}
LOGIN_OF_CEILING = 0.35
P99_OVER_P50 = 3
HEAVY_OVER_LIGHT = 2
MAX_STATEMENTS = 4


def ratio(page: dict, base: dict, key: str = 'rps') -> float:
    """page[key] / base[key]: the median of the per-round ratios when both
    were measured in the same rounds."""
    if 'rounds' in page and 'rounds' in base:
        rounds = zip(page['rounds'], base['rounds'], strict=True)
        return statistics.median(p[key] / b[key] for p, b in rounds)
    return page[key] / base[key]


def statements_per_page(app, reads: list[tuple]) -> dict[str, int]:
    """SQL statements each signed-in page runs, counted in process."""
    clients = {}
    counts = {}
    with app.app_context():
        engine = db.engine
    for name, path, who in reads:
        if who is None:
            continue
        if who not in clients:
            clients[who] = app.test_client()
            clients[who].post('/login', data={'username': who, 'password': PASSWORD})
            clients[who].get('/index')  # last_seen written now, not below
        with StatementCounter(engine) as counter:
            response = clients[who].get(path)
        assert response.status_code == 200, (path, response.status_code)
        counts[name] = counter.count
    return counts


def print_run(run: dict, ceiling: str, login: str) -> None:
    rows = run['rows']
    top, base = rows[ceiling], rows[login]
    print(f'\n### {run["label"]} posts\n')
    print('| page | req/s | p50 ms | p99 ms | errors | vs ceiling | vs /login | SQL |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|')
    for name, r in rows.items():
        print(
            f'| {name} | {r["rps"]:.0f} | {r["p50"]:.2f} | {r["p99"]:.2f} '
            f'| {r["errors"]} | {ratio(r, top):.2f} | {ratio(r, base):.2f} '
            f'| {r.get("sql", "")} |'
        )
    for r in rows.values():
        if 'stored' in r:
            accepted = r['requests'] - r['errors']
            verdict = 'all stored' if r['stored'] >= accepted else 'POSTS MISSING'
            print(
                f'\nWrites: {r["requests"]} requests, {r["errors"]} errors, '
                f'{accepted} accepted, {r["stored"]} posts stored ({verdict}).'
            )
    start, end = run['rss']

    def memory(workers: list[tuple]) -> str:
        return ', '.join(f'{rss:.1f} ({anon:.1f} own)' for rss, anon in workers)

    print(
        f'Resident memory per gunicorn worker, MiB: {memory(start)} after '
        f'start-up; {memory(end)} after the reads.'
    )
    sys.stdout.flush()


def targets(run: dict, ceiling: str, login: str, heavy: str) -> list[tuple]:
    """(target, measured, goal text, met) for one run."""
    rows = run['rows']
    base = rows[login]
    of_ceiling = ratio(base, rows[ceiling])
    checks = [
        (
            '/login req/s / ceiling req/s',
            of_ceiling,
            f'>= {LOGIN_OF_CEILING}',
            of_ceiling >= LOGIN_OF_CEILING,
        )
    ]
    for page, share in LIST_PAGES.items():
        r = ratio(rows[page], base)
        checks.append((f'{page} req/s / /login', r, f'>= {share}', r >= share))
    spread = max(rows[page]['p99'] / rows[page]['p50'] for page in LIST_PAGES)
    checks.append(
        ('p99 / p50, worst list page', spread, f'< {P99_OVER_P50}', spread < 3)
    )
    if run['heavy']:
        slower = ratio(rows[heavy], rows['GET /index'], 'p50')
        checks.append(
            (
                'heavy follower p50 / 50-follow p50',
                slower,
                f'<= {HEAVY_OVER_LIGHT}',
                slower <= HEAVY_OVER_LIGHT,
            )
        )
    worst = max(r['sql'] for r in rows.values() if 'sql' in r)
    checks.append(
        ('SQL statements per page (max)', worst, f'<= {MAX_STATEMENTS}', worst <= 4)
    )
    writes = next(r for r in rows.values() if 'stored' in r)
    accepted = writes['requests'] - writes['errors']
    checks.append(('write errors', writes['errors'], '0', writes['errors'] == 0))
    checks.append(
        (
            'posts stored / writes accepted',
            writes['stored'] / max(accepted, 1),
            '>= 1',
            writes['stored'] >= accepted,
        )
    )
    # An earlier issue's target, kept in view.
    reset = rows['POST /reset_password_request']['p50'] / base['p50']
    checks.append(
        ('reset POST p50 / /login p50 (earlier target)', reset, '<= 1.5', reset <= 1.5)
    )
    return checks


def print_targets(runs: list[dict], ceiling: str, login: str, heavy: str) -> None:
    table = [targets(run, ceiling, login, heavy) for run in runs]
    names = []
    for checks in table:
        names += [c[0] for c in checks if c[0] not in names]
    print('\n### Targets\n')
    print('| target | goal | ' + ' | '.join(run['label'] for run in runs) + ' |')
    print('|---|---|' + '---:|' * len(runs))
    met_all = True
    for name in names:
        goal = next(c[2] for checks in table for c in checks if c[0] == name)
        cells = []
        for checks in table:
            found = [c for c in checks if c[0] == name]
            if not found:
                cells.append('n/a')
                continue
            _, value, _, met = found[0]
            met_all &= met
            cells.append(f'{value:.2f} {"met" if met else "NOT MET"}')
        print(f'| {name} | {goal} | ' + ' | '.join(cells) + ' |')
    print(f'\nAll targets met: {"yes" if met_all else "no"}.')
