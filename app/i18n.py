"""Languages: which one a page is in, and an email in its recipient's.

Flask-Babel translates, with the catalogs under app/translations/ (`flask
translate ...`, see the README). A page is in the signed-in person's chosen
language (/settings), else the first the browser's Accept-Language names
that we have, else English. An email is rendered when it is sent, in the
language stored for its recipient then (`in_language`, app.email).
"""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from babel import Locale
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import (
    Babel,
    force_locale,
    format_date,
    format_time,
    get_locale,
    get_translations,
)
from flask_babel.speaklater import LazyString
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

babel = Babel()

# Each language named in itself, for the menu that chooses one.
NAMES = {'en': 'English', 'es': 'Español', 'zh_Hans': '简体中文'}
# Accept-Language's primary subtags (zh-CN, zh-Hans, es-419 ...) to ours.
_BY_PRIMARY = {'en': 'en', 'es': 'es', 'zh': 'zh_Hans'}


def offered(language: str | None) -> bool:
    return language in current_app.config['LANGUAGES']


def browser_language() -> str:
    """The first language the browser asks for that we have, else English."""
    if has_request_context():
        for tag, quality in request.accept_languages:
            code = _BY_PRIMARY.get(tag.replace('_', '-').split('-')[0].lower())
            if quality > 0 and offered(code):
                return code
    return current_app.config['LANGUAGES'][0]


def select_language() -> Locale:
    """Flask-Babel's locale selector: the account's choice, else the browser's."""
    user = current_user
    if user and user.is_authenticated and offered(user.language):
        return _locale(user.language)
    return _locale(browser_language())


@functools.cache
def _locale(language: str) -> Locale:
    # Made once: Flask-Babel would parse the code again on every request.
    return Locale.parse(language)


def recipient_language(user=None) -> str:
    """An email's language: the recipient's stored one, else the default
    (an email is not written for whoever's browser caused it)."""
    language = getattr(user, 'language', None)
    return language if offered(language) else current_app.config['LANGUAGES'][0]


def tag(language: str) -> str:
    """Our code as a BCP 47 tag (<html lang>, Content-Language): zh-Hans."""
    return language.replace('_', '-')


def html_lang() -> str:
    """This page's (or email's) language as a BCP 47 tag."""
    locale = get_locale()
    return _tag_of(locale) if locale is not None else 'en'


@functools.cache
def _tag_of(locale: Locale) -> str:
    return tag(str(locale))


def long_time(value: datetime | str | None) -> str:
    """A moment in words, in the page's or email's language: "Wednesday,
    December 2, 2026, 19:53 UTC", "miércoles, 2 de diciembre de 2026, 19:53
    UTC". Text queued before this existed is shown as it is."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not value:
        return ''
    date, time = format_date(value, 'full'), format_time(value, 'HH:mm')
    return gettext('%(date)s, %(time)s UTC', date=date, time=time)


@contextmanager
def in_language(language: str) -> Iterator[None]:
    """Translate in `language` inside the block (an email being rendered)."""
    with force_locale(language):
        g.pop('_translations', None)
        try:
            yield
        finally:
            g.pop('_translations', None)


def translations():
    """This context's catalog, looked up once (Flask-Babel finds it again
    for every string, through three context lookups: 30 to 60 strings a
    page)."""
    try:
        return g._translations
    except AttributeError:
        found = g._translations = get_translations()
        return found


# What the code marks its text with: Flask-Babel's functions of the same
# names, on the catalog looked up once.


def gettext(string: str, **variables) -> str:
    text = translations().gettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    """`num` in the text is `n` unless given (the composer's counter)."""
    variables.setdefault('num', n)
    return translations().ngettext(singular, plural, n) % variables


def lazy_gettext(string: str, **variables) -> LazyString:
    """For text made at import (form labels, subjects): translated each time
    it is shown, in that page's or email's language."""
    return LazyString(gettext, string, **variables)


# For templates, Jinja's new-style gettext (autoescaped, formatted with the
# call's keyword arguments, so a literal % is written %%) in one call:
# Jinja's own `_` goes through two template calls a string. A page's
# templates find the catalog in their context (put there once a render);
# macros imported without a context look it up.


def _catalog(context):
    catalog = context.parent.get('_catalog')
    return catalog if catalog is not None else translations()


@pass_context
def _template_gettext(context, __string: str, **variables) -> str:
    text = _catalog(context).gettext(__string)
    if context.eval_ctx.autoescape:
        text = Markup(text)
    # Formatting with nothing to fill in only turns %% into % (most strings).
    return text % variables if variables or '%' in text else text


@pass_context
def _template_ngettext(context, __singular, __plural, __num, **variables) -> str:
    # Double underscores: a template may pass its own `num`.
    variables.setdefault('num', __num)
    text = _catalog(context).ngettext(__singular, __plural, __num)
    return (Markup(text) if context.eval_ctx.autoescape else text) % variables


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_language)
    app.jinja_env.globals.update(
        _=_template_gettext, gettext=_template_gettext, ngettext=_template_ngettext
    )
    app.context_processor(lambda: {'_catalog': translations()})
    app.add_template_global(html_lang)
    app.add_template_filter(long_time)
