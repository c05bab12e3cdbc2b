"""Managing passkeys on /passkeys: list, add, rename, remove. Every page and
action needs a recent proof (app.reauth); adding and removing send a
notice. The browser side is app/static/js/passkeys.js."""

import json

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app import reauth, security_log
from app.agents import describe_agent
from app.database import commit_unless_conflict
from app.extensions import db, limiter
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.i18n import ngettext
from app.notices import queue_notice
from app.passkeys import bp
from app.passkeys.ceremonies import (
    Refused,
    available,
    registration_options,
    verify_registration,
)
from app.passkeys.forms import AnswerForm, RemoveForm, RenameForm
from app.passkeys.models import MAX_PASSKEYS, Passkey
from app.security import audit, config_limit

UNCONFIRMED = _l(
    'Confirm your email address first: it is how we reach you about your passkeys.'
)
UNAVAILABLE = _l('Passkeys need this site to be served under a domain name.')


def _user():
    return current_user._get_current_object()


def json_response(body: str, status: int = 200) -> Response:
    return Response(body, status, mimetype='application/json')


def json_error(message: str, status: int) -> Response:
    """Shown by passkeys.js under its button."""
    return json_response(json.dumps({'error': message}), status)


def _refusal_to_add(user) -> str | None:
    """Why this account cannot add a passkey now, or None."""
    if not available():
        return str(UNAVAILABLE)
    if not user.email_confirmed:
        return str(UNCONFIRMED)
    if Passkey.count_for(user.id) >= MAX_PASSKEYS:
        return ngettext(
            'An account can have %(num)d passkey: remove it first.',
            'An account can have %(num)d passkeys: remove one first.',
            MAX_PASSKEYS,
        )
    return None


def _page(failed_rename: RenameForm | None = None, failed_id: int | None = None):
    user = _user()
    passkeys = Passkey.list_for(user)
    renames = {
        p.id: RenameForm(prefix=f'passkey-{p.id}', name=p.name) for p in passkeys
    }
    if failed_rename is not None:
        renames[failed_id] = failed_rename  # with its errors
    return render_template(
        'passkeys/manage.html',
        title=_('Passkeys'),
        passkeys=passkeys,
        renames=renames,
        remove=RemoveForm(),
        add=AnswerForm(),
        cannot_add=_refusal_to_add(user),
    )


@bp.route('/passkeys')
@login_required
@reauth.fresh_proof_required
def manage():
    """The account's passkeys, and the "Add a passkey" button."""
    return _page()


@bp.route('/passkeys/options', methods=['POST'])
@login_required
@reauth.fresh_proof_required
@limiter.limit(config_limit('PASSKEY_OPTIONS_LIMIT'))
def add_options():
    """JSON options for navigator.credentials.create() (a new challenge)."""
    user = _user()
    refusal = _refusal_to_add(user)
    if refusal:
        return json_error(refusal, 403)
    options = registration_options(user)
    db.session.commit()
    return json_response(options)


@bp.route('/passkeys/add', methods=['POST'])
@login_required
@reauth.fresh_proof_required
def add():
    """Register the passkey the browser made; a notice goes to the owner."""
    user = _user()
    form = AnswerForm()
    refusal = _refusal_to_add(user)
    if refusal or not form.validate_on_submit():
        flash(refusal or _('No passkey was received. Please try again.'), 'danger')
        return redirect(url_for('passkeys.manage'))
    browser, system = describe_agent(request.user_agent.string or '')
    try:
        passkey = verify_registration(
            user,
            form.credential.data,
            _('%(browser)s on %(system)s', browser=browser, system=system)[:64],
        )
    except Refused as error:
        db.session.commit()  # the challenge stays spent
        flash(str(error), 'danger')
        return redirect(url_for('passkeys.manage'))
    db.session.add(passkey)
    log = security_log.record('passkey_added', user, name=passkey.name)
    queue_notice(user, 'passkey_added', name=passkey.name, log=log)
    if not commit_unless_conflict():
        flash(_('That passkey is already registered.'), 'danger')
        return redirect(url_for('passkeys.manage'))
    flash(
        _('Passkey added as "%(name)s". You can rename it below.', name=passkey.name),
        'success',
    )
    return redirect(url_for('passkeys.manage'))


def _own_passkey(passkey_id: int) -> Passkey:
    """One of the signed-in account's passkeys, else 404."""
    passkey = db.session.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != current_user.id:
        abort(404)
    return passkey


@bp.route('/passkeys/<id:passkey_id>/rename', methods=['POST'])
@login_required
@reauth.fresh_proof_required
def rename(passkey_id):
    passkey = _own_passkey(passkey_id)
    form = RenameForm(prefix=f'passkey-{passkey.id}')
    if form.validate_on_submit():
        passkey.name = form.name.data
        db.session.commit()
        audit('passkey_renamed', account=current_user.id, passkey=passkey.id)
        flash(_('Passkey renamed to "%(name)s".', name=passkey.name), 'success')
        return redirect(url_for('passkeys.manage'))
    return _page(form, passkey.id)


@bp.route('/passkeys/<id:passkey_id>/remove', methods=['POST'])
@login_required
@reauth.fresh_proof_required
def remove(passkey_id):
    """Remove one passkey; a notice goes to the owner."""
    passkey = _own_passkey(passkey_id)
    if RemoveForm().validate_on_submit():
        name = passkey.name
        db.session.delete(passkey)
        user, private = _user(), {'passkey': passkey_id}
        log = security_log.record('passkey_removed', user, private, name=name)
        queue_notice(user, 'passkey_removed', name=name, log=log)
        db.session.commit()
        flash(
            _('Passkey "%(name)s" removed: it no longer signs you in.', name=name),
            'info',
        )
    return redirect(url_for('passkeys.manage'))
