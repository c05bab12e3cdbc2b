import sqlalchemy as sa
import sqlalchemy.orm as so

from app import create_app, db, mail
from app.models import Post, User
from app.outbox import OutboxMessage
from app.startup import ConfigError, exit_on_config_error, warn_if_exposed

try:
    app = create_app()
except ConfigError as error:  # one line and exit 1, not a traceback
    exit_on_config_error(error)
warn_if_exposed(app)


@app.shell_context_processor
def make_shell_context():
    return {
        'sa': sa,
        'so': so,
        'db': db,
        'mail': mail,
        'User': User,
        'Post': Post,
        'OutboxMessage': OutboxMessage,
    }
