"""`flask translate init|update|compile`: the Mega-Tutorial's commands,
run through Babel's own command line (pybabel) in this process.

The catalogs live in app/translations/<language>/LC_MESSAGES/messages.po;
the compiled .mo files are built by `make` (never committed)."""

import os
import tempfile

import click
from babel.messages.frontend import CommandLineInterface
from flask import Blueprint

bp = Blueprint('translate', __name__, cli_group=None)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOGS = os.path.join(ROOT, 'app', 'translations')
# The lazy form (`_l`) marks strings made at import: form labels, subjects.
KEYWORDS = ['-k', '_l', '-k', 'lazy_gettext', '-k', 'lazy_ngettext:1,2']


def pybabel(*args: str) -> None:
    CommandLineInterface().run(['pybabel', '-q', *args])


def extract(pot: str) -> None:
    """Every message in the code and templates into the template `pot`."""
    config = os.path.join(ROOT, 'babel.cfg')
    pybabel('extract', '-F', config, *KEYWORDS, '--no-location', '--sort-output',
            '--project', 'Microblog', '-o', pot, ROOT)  # fmt: skip


@bp.cli.group()
def translate():
    """Add, update and compile the translations."""


@translate.command()
@click.argument('language')
def init(language: str) -> None:
    """Start a catalog for LANGUAGE (a Babel code: es, zh_Hans)."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, 'messages.pot')
        extract(pot)
        pybabel('init', '-i', pot, '-d', CATALOGS, '-l', language)


@translate.command()
def update() -> None:
    """Add new messages to every catalog, and mark changed ones fuzzy."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, 'messages.pot')
        extract(pot)
        pybabel('update', '-i', pot, '-d', CATALOGS, '--no-wrap')


@translate.command('compile')
def compile_catalogs() -> None:
    """Compile every catalog (.po) for the app to use (.mo)."""
    pybabel('compile', '-d', CATALOGS)
