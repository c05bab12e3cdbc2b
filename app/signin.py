"""The last step of every sign-in, after the password (and the second
factor, when the account has one): recognise the browser by its device
cookie (app.devices), tell the owner about one not seen before, and sign
this browser in."""

from flask import redirect, url_for

from app import deletion, devices, security_log, sessions
from app.models import User
from app.notices import queue_notice
from app.security import audit


def is_new_browser(user: User) -> bool:
    """No device cookie known to this account; False for its first sign-in.
    Accounts without any known device yet (signed in only before device
    cookies) are judged as before, by browser and system family."""
    if devices.seen(user):
        return False
    return devices.any_known(user) or sessions.is_new_browser(user)


def complete_sign_in(
    user: User, remember: bool, next_page: str | None, trust: bool = False
):
    """Sign this browser in (commits) and go on to `next_page`; `trust`
    skips the second step here for TRUSTED_BROWSER_DAYS. An account
    scheduled for deletion signs nothing in, however it proved itself
    (password and second factor, or a passkey): a page says how to restore it."""
    if user.deleted_at is not None:
        return deletion.scheduled_sign_in(user)
    if is_new_browser(user):
        log = security_log.record('new_browser_notice', user)
        queue_notice(user, 'new_sign_in', log=log)  # committed with the sign-in
    device_hash = devices.remember(user)
    if trust:
        devices.trust(user, device_hash)
        audit('browser_trusted', account=user.id)
    security_log.record('login', user)  # committed with the sign-in
    sessions.sign_in(user, remember=remember, device_hash=device_hash)
    return redirect(next_page or url_for('main.index'))
