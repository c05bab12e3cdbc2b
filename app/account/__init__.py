from flask import Blueprint

bp = Blueprint('account', __name__)

from app.account import data_routes, email, link_routes, routes  # noqa: E402, F401
