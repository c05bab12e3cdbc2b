"""Passkeys (WebAuthn): managed on /passkeys; used to sign in without a
password (a button, and the browser's autofill), as the second sign-in
step and to prove it's you before a sensitive change."""

from flask import Blueprint

bp = Blueprint('passkeys', __name__)

from app.passkeys import routes, signin  # noqa: E402, F401
