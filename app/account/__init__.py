from flask import Blueprint

bp = Blueprint('account', __name__)

from app.account import email, link_routes, routes  # noqa: E402, F401
