"""The account's second factor: its state, turning the authenticator app
on and off, and the recovery codes. Every change needs a recent proof
(app.reauth) and sends a notice."""

import segno
from flask import flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required

from app import reauth, security_log, sessions
from app.database import commit_unless_conflict
from app.extensions import db
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.mfa import bp
from app.mfa.forms import DisableForm, RegenerateForm, SetupForm
from app.mfa.models import ISSUER, Authenticator, RecoveryCode, remove_second_factor
from app.notices import queue_notice
from app.sessions import UserSession

UNCONFIRMED = _l(
    'Confirm your email address first: it is how we reach you if you lose it.'
)
ALREADY_ON = _l('The authenticator app is already on.')
SETUP = 'mfa_setup'  # the new secret, sealed, until a right code turns it on


def _user():
    return current_user._get_current_object()


@bp.route('/two_factor')
@login_required
def status():
    """What protects the sign-in, and what can be done about it."""
    authenticator = Authenticator.of(_user())
    return render_template(
        'mfa/status.html',
        title=_('Two-factor sign-in'),
        authenticator=authenticator,
        remaining=RecoveryCode.remaining(_user()) if authenticator else 0,
    )


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code, dark on light whatever the
    theme (scanners need the contrast); no image library, no third party."""
    code = segno.make(uri, error='m')
    svg = code.svg_inline(scale=5, border=4, dark='#000', light='#fff')
    return svg.replace('<svg ', '<svg aria-hidden="true" focusable="false" ', 1)


@bp.route('/two_factor/setup', methods=['GET', 'POST'])
@login_required
@reauth.fresh_proof_required
def setup():
    """Show a new secret (QR code and text); it is on after a right code."""
    user = _user()
    if not user.email_confirmed:
        flash(str(UNCONFIRMED), 'warning')
        return redirect(url_for('mfa.status'))
    if Authenticator.enabled_for(user):
        flash(str(ALREADY_ON), 'info')
        return redirect(url_for('mfa.status'))
    sealed = session.get(SETUP)
    totp = Authenticator.open_sealed(user, sealed)
    if totp is None:  # none yet, another account's, or sealed by a lost key
        sealed = session[SETUP] = Authenticator.new_secret(user)
        totp = Authenticator.open_sealed(user, sealed)
    form = SetupForm()
    if form.validate_on_submit():
        if Authenticator.turn_on(user, sealed, form.code.data):
            session.pop(SETUP, None)
            # A session signed in before had no second step: a password
            # thief's would otherwise keep the account, and could turn it off.
            sessions.revoke(user.id, UserSession.id != user.session_id)
            return _show_new_codes(user, 'authenticator_added')
        form.code.errors.append(_('That code is not right: try the one showing now.'))
    uri = totp.provisioning_uri(name=user.username, issuer_name=ISSUER)
    return render_template(
        'mfa/setup.html',
        title=_('Set up an authenticator app'),
        form=form,
        uri=uri,
        secret=totp.secret,
        qr=qr_svg(uri),
    )


def _show_new_codes(user, event: str):
    """New recovery codes, shown once on this page (commits)."""
    codes = RecoveryCode.replace_all(user)
    queue_notice(user, event, log=security_log.record(event, user))
    reauth.mark_proven()
    if not commit_unless_conflict():  # turned on meanwhile, in another tab
        flash(str(ALREADY_ON), 'info')
        return redirect(url_for('mfa.status'))
    return render_template(
        'mfa/new_codes.html',
        title=_('Your recovery codes'),
        codes=codes,
        event=event,
        text=_codes_text(user, codes),
    )


def _codes_text(user, codes: list[str]) -> str:
    """The codes as the text file the page offers (plain text, not HTML)."""
    heading = _('Microblog recovery codes for %(name)s', name=user.username)
    return heading + '\n\n' + '\n'.join(codes) + '\n'


@bp.route('/two_factor/disable', methods=['GET', 'POST'])
@login_required
@reauth.fresh_proof_required
def disable():
    """Turn the authenticator app off; its recovery codes go with it."""
    user = _user()
    form = DisableForm()
    if not Authenticator.enabled_for(user):
        return redirect(url_for('mfa.status'))
    if form.validate_on_submit():
        remove_second_factor(user)
        log = security_log.record('authenticator_removed', user)
        queue_notice(user, 'authenticator_removed', log=log)
        db.session.commit()
        flash(
            _('The authenticator app is off: signing in takes only your password.'),
            'info',
        )
        return redirect(url_for('mfa.status'))
    return render_template(
        'mfa/disable.html', title=_('Turn off the authenticator app'), form=form
    )


@bp.route('/recovery_codes', methods=['GET', 'POST'])
@login_required
@reauth.fresh_proof_required
def recovery_codes():
    """How many codes are left; make new ones (every old one dies)."""
    user = _user()
    if not Authenticator.enabled_for(user):
        flash(
            _('Recovery codes come with a second factor: turn one on first.'),
            'info',
        )
        return redirect(url_for('mfa.status'))
    form = RegenerateForm()
    if form.validate_on_submit():
        return _show_new_codes(user, 'recovery_codes_regenerated')
    return render_template(
        'mfa/recovery_codes.html',
        title=_('Recovery codes'),
        form=form,
        remaining=RecoveryCode.remaining(user),
    )
