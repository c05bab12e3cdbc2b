"""Checks on the translations: complete, placeholders kept, no English left
in a page or email rendered in another language."""

import html
import os
import re
import tempfile

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from app.translate import CATALOGS, extract

LANGUAGES = ('es', 'zh_Hans')
PLACEHOLDER = re.compile(r'%\(\w+\)[sd]')
_TAG = re.compile(r'<(script|style)\b.*?</\1>|<[^>]+>', re.S)


def code_messages() -> Catalog:
    """Every message marked in the code and templates, as pybabel finds them."""
    with tempfile.TemporaryDirectory() as tmp:
        pot = os.path.join(tmp, 'messages.pot')
        extract(pot)
        with open(pot, 'rb') as f:
            return read_po(f)


def catalog(language: str) -> Catalog:
    path = os.path.join(CATALOGS, language, 'LC_MESSAGES', 'messages.po')
    with open(path, 'rb') as f:
        return read_po(f, locale=language)


def _forms(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def untranslated(code: Catalog, translated: Catalog) -> list[str]:
    """Messages of the code with no translation (absent, empty or fuzzy)."""
    missing = []
    for message in code:
        if not message.id:
            continue
        found = translated.get(message.id)
        if found is None or found.fuzzy or not all(_forms(found.string)):
            missing.append(_forms(message.id)[0])
    return missing


def lost_placeholders(translated: Catalog) -> list[str]:
    """Messages whose translation (each plural form) has not exactly the
    placeholders of the English (the plural's, for a plural)."""
    wrong = []
    for message in translated:
        if not message.id or not all(_forms(message.string)):
            continue
        wanted = set(PLACEHOLDER.findall(_forms(message.id)[-1]))
        for form in _forms(message.string):
            if set(PLACEHOLDER.findall(form)) != wanted:
                wrong.append(f'{_forms(message.id)[0]!r} -> {form!r}')
    return wrong


def visible_text(markup: str) -> str:
    """What a reader sees of a page or email: no tags, scripts or styles,
    entities decoded, white space collapsed."""
    return ' '.join(html.unescape(_TAG.sub(' ', markup)).split())


def english_left(text: str, translated: Catalog) -> list[str]:
    """English sentences of the catalog found in `text` although the
    catalog translates them: a page or email rendered in its language
    should hold none. Placeholders split a message; pieces of three words
    or more are looked for."""
    text = ' '.join(text.split())
    left = []
    for message in translated:
        english = _forms(message.id)[0]
        if not english or _forms(message.string)[0] == english:
            continue
        for piece in PLACEHOLDER.split(visible_text(english)):
            piece = piece.strip(' .,:;!?"()')
            if len(piece.split()) >= 3 and piece in text:
                left.append(piece)
    return left


def translate(language: str, english: str) -> str:
    """`english` as the compiled catalog of `language` says it."""
    from babel.support import Translations

    return Translations.load(CATALOGS, [language]).gettext(english)
