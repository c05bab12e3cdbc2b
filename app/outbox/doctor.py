"""`flask mail doctor`: talk to the configured mail server exactly as the
sender would (TLS mode, port, credentials, timeout), send nothing, and say
in plain words what works and what to change."""

import smtplib
import ssl
from dataclasses import dataclass, field
from email.utils import parseaddr

from flask import Flask


@dataclass
class Report:
    lines: list[tuple[str, str]] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(('ok', text))

    def note(self, text: str) -> None:
        self.lines.append(('note', text))

    def problem(self, text: str) -> None:
        self.lines.append(('problem', text))

    @property
    def healthy(self) -> bool:
        return all(kind != 'problem' for kind, _ in self.lines)


def examine(app: Flask) -> Report:
    report = Report()
    config = app.config
    check_sender_domain(config, report)
    if not config.get('MAIL_SERVER'):
        report.problem(
            'MAIL_SERVER is not set: development prints emails to the console '
            'and production keeps them queued. Set MAIL_SERVER and MAIL_PORT.'
        )
        return report
    mode = 'implicit TLS' if config['MAIL_USE_SSL'] else (
        'STARTTLS' if config['MAIL_USE_TLS'] else 'no encryption'
    )  # fmt: skip
    report.note(
        f'connecting to {config["MAIL_SERVER"]}:{config["MAIL_PORT"]} with '
        f'{mode}, timeout {config["MAIL_TIMEOUT"]}s'
    )
    host = connect(config, report)
    if host is None:
        return report
    try:
        converse(host, config, report)
    except (smtplib.SMTPException, OSError) as exc:
        report.problem(f'the conversation failed: {type(exc).__name__}: {exc}')
    finally:
        try:
            host.quit()
        except (smtplib.SMTPException, OSError):
            host.close()
    return report


def connect(config, report: Report):
    server, port, timeout = (
        config['MAIL_SERVER'],
        config['MAIL_PORT'],
        config['MAIL_TIMEOUT'],
    )
    try:
        if config['MAIL_USE_SSL']:
            host = smtplib.SMTP_SSL(server, port, timeout=timeout)
        else:
            host = smtplib.SMTP(server, port, timeout=timeout)
    except ConnectionRefusedError:
        report.problem(
            f'connection refused by {server}:{port}: is the mail server running, '
            'and is MAIL_PORT right (25, 587 for STARTTLS, 465 for implicit TLS)?'
        )
    except ssl.SSLError as exc:
        report.problem(
            f'implicit TLS failed ({exc.reason}): this port does not speak TLS '
            'from the start. Use MAIL_USE_SSL=false with MAIL_USE_TLS=true '
            '(STARTTLS, usually port 587), or the implicit-TLS port (465).'
        )
    except TimeoutError:
        hint = ' (port 465 expects MAIL_USE_SSL=true)' if port == 465 else ''
        report.problem(f'no answer from {server}:{port} in time{hint}')
    except (OSError, smtplib.SMTPException) as exc:
        report.problem(f'cannot connect to {server}:{port}: {exc}')
    else:
        greeting = host.ehlo()[1].decode(errors='replace').splitlines()[0]
        report.ok(f'connected: the server calls itself {greeting[:60]}')
        return host
    return None


def converse(host: smtplib.SMTP, config, report: Report) -> None:
    offers_tls = host.has_extn('starttls')
    if config['MAIL_USE_TLS']:
        if not offers_tls:
            report.problem(
                'the server does not offer STARTTLS: set MAIL_USE_TLS=false, '
                'or use the port that offers it (usually 587)'
            )
            return
        host.starttls()
        host.ehlo()
        report.ok('STARTTLS: encrypted')
    elif offers_tls and not config['MAIL_USE_SSL']:
        report.note('the server offers STARTTLS: set MAIL_USE_TLS=true to use it')
    check_login(host, config, report)
    if host.has_extn('smtputf8'):
        report.ok('SMTPUTF8: supported (addresses with non-ASCII local parts)')
    else:
        report.note(
            'SMTPUTF8: not offered; addresses with a non-ASCII local part '
            'will fail with that reason'
        )


def check_login(host: smtplib.SMTP, config, report: Report) -> None:
    username, password = config['MAIL_USERNAME'], config['MAIL_PASSWORD']
    if not (username and password):
        if host.has_extn('auth'):
            report.note('the server offers a login; none is configured')
        return
    if not host.has_extn('auth'):
        report.problem(
            'a login is configured but the server offers none here: unset '
            'MAIL_USERNAME/MAIL_PASSWORD, or turn on MAIL_USE_TLS if it only '
            'offers login after STARTTLS'
        )
        return
    try:
        host.login(username, password)
    except smtplib.SMTPAuthenticationError as exc:
        report.problem(
            f'login refused ({exc.smtp_code}): check MAIL_USERNAME and MAIL_PASSWORD'
        )
    else:
        report.ok(f'login accepted for {username}')


def check_sender_domain(config, report: Report) -> None:
    sender = parseaddr(config['MAIL_DEFAULT_SENDER'] or '')[1]
    domain = sender.rpartition('@')[2].lower()
    site = (config.get('SERVER_NAME') or '').split(':')[0].lower()
    if not domain:
        report.problem('MAIL_DEFAULT_SENDER is not an email address')
    elif site and not (site == domain or site.endswith('.' + domain)):
        report.note(
            f"the From address ({sender}) is on {domain}, not on SERVER_NAME's "
            f'domain ({site}): make sure SPF and DKIM for {domain} allow this '
            'server, or mail may land in spam'
        )
    else:
        report.ok(f'From address: {sender}')
