"""Form validators shared by the blueprints."""

from wtforms.validators import Regexp

# Usernames appear in URLs (/user/<username>): keep them to safe characters.
USERNAME_RULE = Regexp(
    r'^[\w.-]+$', message='Use letters, digits, dots, dashes and underscores only.'
)
