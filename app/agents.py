"""Browser and system names for people to read, from ua-parser.

ua-parser copies some families straight from the User-Agent header (its
catch-all rules capture any text before a version), so a header such as
`Click-here-evil.example/11.5 CFNetwork` would reach an email as a link.
Only the families ua-parser's own table names are shown: a rule's fixed
replacement, or the literal words its pattern captures; anything else is
"an unknown browser". Versions are shown only when they are digits.
"""

import re
from functools import cache

from ua_parser import parse as parse_user_agent
from ua_parser_builtins.matchers import MATCHERS

from app.validators import link_like

UNKNOWN_BROWSER = 'an unknown browser'
UNKNOWN_SYSTEM = 'an unknown system'
# The first capturing group of a pattern, when it is only words: (Firefox|Fx)
LITERAL_GROUP = re.compile(r'(?<!\\)\((?!\?)([A-Za-z0-9 _]+(?:\|[A-Za-z0-9 _]+)*)\)')
ANY_GROUP = re.compile(r'(?<!\\)\((?!\?)')


def _families(matchers) -> dict[str, str]:
    """casefolded name -> name, for every family the rules can produce
    without copying free text from the header."""
    names = set()
    for matcher in matchers:
        template = matcher.family or '$1'
        if '$' not in template:
            names.add(template)
            continue
        if template.count('$') != 1 or '$1' not in template:
            continue  # built from several captures: not a fixed name
        first = ANY_GROUP.search(matcher.regex)
        literal = LITERAL_GROUP.search(matcher.regex)
        if first and literal and first.start() == literal.start():
            names.update(template.replace('$1', w) for w in literal[1].split('|'))
    # Some of the table's own names look like hosts (WebPageTest.org bot).
    return {n.casefold(): n for n in names if n.strip() and not link_like(n)}


@cache
def browsers() -> dict[str, str]:
    return _families(MATCHERS[0])


@cache
def systems() -> dict[str, str]:
    return _families(MATCHERS[1])


def parse(user_agent: str) -> tuple[str | None, str, str | None]:
    """(browser or None, its major version or '', OS or None): only names
    in ua-parser's table."""
    result = parse_user_agent(user_agent or '')
    browser, major, system = None, '', None
    if result.user_agent is not None:
        browser = browsers().get(result.user_agent.family.casefold())
        major = result.user_agent.major or ''
    if result.os is not None:
        system = systems().get(result.os.family.casefold())
    if browser is None or not (major.isascii() and major.isdigit()):
        major = ''
    return browser, major[:6], system


def agent_family(user_agent: str) -> str:
    """'Firefox/Windows': what a new-browser check compares."""
    browser, _, system = parse(user_agent)
    return f'{browser or "Unknown"}/{system or "Unknown"}'[:128]


def describe_agent(user_agent: str) -> tuple[str, str]:
    """('Firefox 133', 'Windows'): browser and OS, for people to read."""
    browser, major, system = parse(user_agent)
    name = f'{browser} {major}' if browser and major else browser
    return name or UNKNOWN_BROWSER, system or UNKNOWN_SYSTEM
