"""The ceiling: a trivial Flask endpoint on the same server settings."""

from flask import Flask

app = Flask(__name__)


@app.get('/')
def index():
    return 'Hello, World!'
