import sqlalchemy as sa
import sqlalchemy.orm as so

from app import create_app, db, mail
from app.models import Post, User
from app.outbox import OutboxMessage

app = create_app()


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
