"""A second factor: the authenticator app (TOTP), recovery codes, and the
second sign-in step. Used by auth's sign-in and the account's settings."""

from flask import Blueprint

bp = Blueprint('mfa', __name__)

from app.mfa import routes, verify  # noqa: E402, F401
