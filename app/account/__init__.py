from flask import Blueprint

bp = Blueprint('account', __name__)

from app.account import email, routes  # noqa: E402, F401
