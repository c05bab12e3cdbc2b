"""Issue 21, point 6: an email change an attacker made can always be undone
by the owner, and the old mailbox cannot take the account back against the
owner's will. Real SMTP sink; SQLite, or PostgreSQL with TEST_DATABASE_URL."""

import re
import threading

import sqlalchemy as sa

from app.email_undo import EmailUndo
from app.extensions import db
from app.models import User
from app.outbox import OutboxMessage
from app.testing import PASSWORD, AuthActions
from app.testing.data import make_user

LINK = re.compile(r'https://microblog\.test(/(?:\w+)/[\w.-]+)')


def links_in(message) -> dict[str, str]:
    """{'revert_email': '/revert_email/<token>', ...} from a text body."""
    text = message.get_body(('plain',)).get_content()
    return {path.split('/')[1]: path for path in LINK.findall(text)}


def open_link(client, path: str):
    """Open an emailed link and press its confirming button."""
    landing = client.get(path)
    assert landing.status_code == 302 and landing.location.endswith('/confirm')
    return client.post(landing.location)


def ask_change(client, address: str):
    data = {'current_password': PASSWORD, 'email': address}
    return client.post('/change_email', data=data)


def change_email(client, smtp, address: str, old: str) -> dict[str, str]:
    """Ask, confirm from the new inbox; the old address's notice links."""
    assert ask_change(client, address).location == '/settings'
    confirm = smtp.take('Confirm your new email address', address)
    assert open_link(client, links_in(confirm)['confirm_email']).location == '/index'
    return links_in(smtp.take('Your email address was changed', old))


def email_of(app, username='susan') -> str:
    with app.app_context():
        return User.by_username(username).email


def signed_in(client) -> bool:
    return client.get('/index').status_code == 200


def setup(make_app, smtp):
    app = make_app()
    client = app.test_client()
    AuthActions(client, smtp).register()
    AuthActions(client).login()
    return app, client


def test_undo_restores_the_old_address_even_after_later_changes(make_app, smtp):
    app, thief = setup(make_app, smtp)
    first = change_email(thief, smtp, 'thief@example.com', 'susan@example.com')
    # A second change needs the first address's consent; here it gives it.
    assert ask_change(thief, 'thief2@example.com').location == '/settings'
    consent = smtp.take('Allow a change of email address', 'susan@example.com')
    assert (
        open_link(app.test_client(), links_in(consent)['approve_email']).status_code
        == 302
    )
    confirm = smtp.take('Confirm your new email address', 'thief2@example.com')
    assert open_link(thief, links_in(confirm)['confirm_email']).location == '/index'
    assert email_of(app) == 'thief2@example.com'

    owner = app.test_client()
    assert open_link(owner, first['revert_email']).location == '/login'
    assert email_of(app) == 'susan@example.com'
    assert not signed_in(thief)
    smtp.take('Reset Your Password', 'susan@example.com')
    # The address it replaced hears of it, and the later change's undo died.
    restored = smtp.take('previous email address was restored', 'thief2@example.com')
    assert 'susan@example.com' in restored.get_body(('plain',)).get_content()
    second = links_in(smtp.take('Your email address was changed', 'thief@example.com'))
    open_link(app.test_client(), second['revert_email'])
    assert email_of(app) == 'susan@example.com'
    assert open_link(owner, first['revert_email']).location == '/index'  # once


def test_an_open_undo_sends_the_next_change_to_the_old_address(make_app, smtp):
    app, thief = setup(make_app, smtp)
    # Asked before the first change is confirmed: its link must die with it.
    assert ask_change(thief, 'early@example.com').location == '/settings'
    early = smtp.take('Confirm your new email address', 'early@example.com')
    change_email(thief, smtp, 'thief@example.com', 'susan@example.com')
    open_link(thief, links_in(early)['confirm_email'])
    assert email_of(app) == 'thief@example.com'
    with app.app_context():  # as if that request's link were made just now
        user = User.by_username('susan')
        late = user.make_token('change_email', 600, email='late@example.com')
    open_link(thief, f'/confirm_email/{late}')
    assert email_of(app) == 'thief@example.com'

    page = thief.get('/change_email').data.decode()
    assert 'another change needs the consent' in page and 's***@example.com' in page
    response = ask_change(thief, 'thief2@example.com')
    assert 'previous address' in thief.get(response.location).data.decode()
    consent = smtp.take('Allow a change of email address', 'susan@example.com')
    assert 'thief2@example.com' in consent.get_body(('plain',)).get_content()
    assert email_of(app) == 'thief@example.com'
    assert not any(m['To'] == 'thief2@example.com' for m in smtp.messages)
    # The consent link alone changes nothing: the new address confirms next.
    open_link(app.test_client(), links_in(consent)['approve_email'])
    assert email_of(app) == 'thief@example.com'
    smtp.take('Confirm your new email address', 'thief2@example.com')


def test_a_released_address_is_reserved_while_its_undo_is_open(make_app, smtp):
    app, client = setup(make_app, smtp)
    other = app.test_client()
    AuthActions(other, smtp).register('bob', 'bob@example.com')
    AuthActions(other).login('bob')
    notice = change_email(client, smtp, 'new@example.com', 'susan@example.com')

    # Sign-up answers as for any address, makes no account, mails its owner.
    taker = app.test_client()
    response = AuthActions(taker, smtp).register(
        'mallory', 'susan@example.com', confirm=False
    )
    assert response.location == '/login'
    smtp.take('Someone tried to sign up', 'susan@example.com')
    with app.app_context():
        assert User.by_username('mallory') is None
    # Another account cannot move to it: the same answer as for a free
    # address, but no link is queued, and a link made anyway is refused.
    for address in ('susan@example.com', 'free@example.com'):
        response = ask_change(other, address)
        assert response.location == '/settings'
        page = other.get('/settings').data.decode()
        assert f'We sent a link to {address}. Your address changes' in page
    smtp.take('Confirm your new email address', 'free@example.com')
    with app.app_context():
        kinds = db.session.execute(
            sa.select(OutboxMessage.kind).where(
                OutboxMessage.recipients == 'susan@example.com'
            )
        ).scalars()
        assert 'change_email' not in set(kinds)
        bob = User.by_username('bob')
        planted = bob.make_token('change_email', 600, email='susan@example.com')
    open_link(other, f'/confirm_email/{planted}')
    assert email_of(app, 'bob') == 'bob@example.com'

    # "This was me" ends the undo, and with it the reservation.
    owner_mailbox = app.test_client()
    assert open_link(owner_mailbox, notice['keep_email']).location == '/index'
    assert ask_change(other, 'susan@example.com').location == '/settings'
    smtp.take('Confirm your new email address', 'susan@example.com')


def test_this_was_me_stops_the_old_mailbox_taking_the_account_back(make_app, smtp):
    app, owner = setup(make_app, smtp)
    notice = change_email(owner, smtp, 'new@example.com', 'susan@example.com')
    page = owner.get(owner.get(notice['keep_email']).location).data.decode()
    assert 'undo link sent to susan@example.com then stops working' in page
    assert owner.post('/keep_email/confirm').location == '/index'
    shared_mailbox = app.test_client()
    assert open_link(shared_mailbox, notice['revert_email']).location == '/index'
    assert email_of(app) == 'new@example.com' and signed_in(owner)
    # No undo is open any more: a change goes straight to the new address.
    assert ask_change(owner, 'newer@example.com').location == '/settings'
    smtp.take('Confirm your new email address', 'newer@example.com')


def test_undo_never_ends_in_a_500_when_the_old_address_was_taken(make_app, smtp):
    app, client = setup(make_app, smtp)
    notice = change_email(client, smtp, 'new@example.com', 'susan@example.com')
    with app.app_context():  # as a race, or an account older than the rule
        db.session.add(User(username='bob', email='susan@example.com'))
        db.session.commit()
    owner = app.test_client()
    response = open_link(owner, notice['revert_email'])
    assert response.status_code == 302 and response.location == '/index'
    assert b'cannot be put back' in owner.get('/index', follow_redirects=True).data
    assert email_of(app) == 'new@example.com'
    with app.app_context():  # nothing half-done: the undo is still open
        assert EmailUndo.gate(User.by_username('susan').id) is not None


def test_a_confirmed_change_signs_out_the_other_sessions(make_app, smtp):
    app, here = setup(make_app, smtp)
    there = app.test_client()
    AuthActions(there).login(remember=True)
    change_email(here, smtp, 'new@example.com', 'susan@example.com')
    assert signed_in(here)
    assert not signed_in(there)


def test_undo_and_this_was_me_at_once_apply_exactly_one(make_app, smtp):
    app, client = setup(make_app, smtp)
    notice = change_email(client, smtp, 'new@example.com', 'susan@example.com')
    browsers = {}
    for name in ('revert_email', 'keep_email'):
        browsers[name] = app.test_client()
        browsers[name].get(notice[name])
    barrier = threading.Barrier(2)
    results = {}

    def press(name):
        barrier.wait()
        results[name] = browsers[name].post(f'/{name}/confirm')

    threads = [threading.Thread(target=press, args=(n,)) for n in browsers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        outcomes = db.session.scalars(sa.select(EmailUndo.outcome)).all()
    assert outcomes in (['undone'], ['kept'])
    expected = 'susan@example.com' if outcomes == ['undone'] else 'new@example.com'
    assert email_of(app) == expected
    assert all(r.status_code == 302 for r in results.values())


def test_an_address_never_confirmed_gets_no_undo_and_no_notice(make_app, smtp):
    """Anyone can sign up with a stranger's address: moving off it must not
    mail that stranger nor keep the address from them for a week."""
    app = make_app()
    client = app.test_client()
    with app.app_context():  # an unconfirmed account from before pending sign-ups
        make_user().email_confirmed = False
        db.session.commit()
    AuthActions(client).login()
    assert ask_change(client, 'new@example.com').location == '/settings'
    confirm = smtp.take('Confirm your new email address', 'new@example.com')
    assert open_link(client, links_in(confirm)['confirm_email']).location == '/index'
    assert email_of(app) == 'new@example.com'
    with app.app_context():
        kinds = db.session.scalars(sa.select(OutboxMessage.kind)).all()
        assert 'email_changed' not in kinds
        assert db.session.scalar(sa.select(sa.func.count(EmailUndo.id))) == 0
    stranger = app.test_client()
    AuthActions(stranger, smtp).register('stranger', 'susan@example.com')
    AuthActions(stranger).login('stranger')
    assert signed_in(stranger)
