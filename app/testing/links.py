"""The links the app emails: finding them in a message, making and following them."""

import re

from app.models import User

LINK = re.compile(r'https?://[^\s"<]+/reset_password/[\w.-]+')


def reset_link(message) -> str:
    text = message.get_body(('plain',)).get_content()
    return LINK.search(text).group(0)


CONFIRM_PATH = re.compile(r'https://microblog\.test(/(?:confirm|revert)_email/[\w.-]+)')


def emailed_path(message) -> str:
    return CONFIRM_PATH.search(message.get_body(('plain',)).get_content())[1]


def use_link(client, path: str, **form):
    """Open an emailed link and press its confirming button."""
    landing = client.get(path)
    assert landing.status_code == 302 and 'confirm' in landing.location
    return client.post(landing.location, data=form)


def reset_token_for(app, username='susan', expires_in=600) -> str:
    with app.app_context():
        return User.by_username(username).get_reset_password_token(expires_in)
