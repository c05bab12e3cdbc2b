import functools
import hashlib

from babel import Locale
from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_login import current_user, login_required
from markupsafe import Markup, escape

from app import timeline, usernames
from app.database import commit_unless_conflict
from app.extensions import db
from app.forms import EmptyForm
from app.i18n import gettext as _
from app.i18n import lazy_gettext as _l
from app.i18n import ngettext
from app.main import bp
from app.main.forms import EditProfileForm, PostForm
from app.models import Post, User

CONFIRM_FIRST = _l('Confirm your email address first: use the link we sent you.')
# A number of each plural category a language may have (CLDR's one, two,
# few, many, other ...): 0-20 and 100 name every one of most languages'
# integers, 1,000,000 Spanish's "many".
PLURAL_SAMPLES = (*range(21), 100, 1_000_000)


def page_number() -> int:
    return min(max(1, request.args.get('page', 1, type=int)), 100_000)


def per_page() -> int:
    return current_app.config['POSTS_PER_PAGE']


@bp.app_template_global()
def counter_words() -> Markup:
    """The composer counter's words for app.js, as attributes of the post
    field: data-left-<category> and data-over-<category> for each plural
    category of this page's language ({n} stands for the number); the
    script picks one with Intl.PluralRules. Made once per language."""
    return _counter_words(get_locale())


@functools.cache
def _counter_words(locale: Locale) -> Markup:
    samples: dict[str, int] = {}
    for n in PLURAL_SAMPLES:  # a number of each category the language has
        samples.setdefault(locale.plural_form(n), n)
    words = []
    for category, n in samples.items():
        left = ngettext(
            '%(num)s character left', '%(num)s characters left', n, num='{n}'
        )
        over = ngettext(
            '%(num)s character too many', '%(num)s characters too many', n, num='{n}'
        )
        words.append(f' data-left-{category}="{escape(left)}"')
        words.append(f' data-over-{category}="{escape(over)}"')
    return Markup(''.join(words))


@bp.route('/', methods=['GET', 'POST'])
@bp.route('/index', methods=['GET', 'POST'])
@login_required
def index():
    form = PostForm()
    if form.validate_on_submit():
        if not current_user.email_confirmed:
            flash(str(CONFIRM_FIRST), 'warning')
            return redirect(url_for('main.index'))
        db.session.add(Post(body=form.post.data, author=current_user))
        db.session.commit()
        flash(_('Your post is now live!'), 'success')
        return redirect(url_for('main.index'))
    posts = timeline.home_page(current_user, page_number(), per_page())
    return render_template('main/index.html', title=_('Home'), form=form, posts=posts)


@bp.route('/explore')
@login_required
def explore():
    posts = timeline.explore_page(page_number(), per_page())
    return render_template('main/index.html', title=_('Explore'), posts=posts)


@bp.route('/user/<username>')
@login_required
def user(username):
    """A profile: 404 for an unknown user."""
    user, stats = User.profile(username, viewer=current_user)
    if user is None:
        abort(404)
    posts = timeline.profile_page(user, page_number(), per_page())
    form = EmptyForm() if user != current_user else None  # follow or unfollow
    return render_template(
        'main/user.html',
        title=user.username,
        user=user,
        posts=posts,
        stats=stats,
        form=form,
    )


@bp.route('/edit_profile', methods=['GET', 'POST'])
@login_required
def edit_profile():
    form = EditProfileForm(current_user)
    if form.validate_on_submit():
        old_key = current_user.username_key
        current_user.username = form.username.data
        current_user.about_me = form.about_me.data
        if current_user.username_key != old_key:
            usernames.release(current_user, old_key)
        if commit_unless_conflict():
            flash(_('Your changes have been saved.'), 'success')
            return redirect(url_for('main.edit_profile'))
        form.username.errors.append(str(form.USERNAME_TAKEN))
    if request.method == 'GET':
        form.username.data = current_user.username
        form.about_me.data = current_user.about_me
    return render_template('main/edit_profile.html', title=_('Edit Profile'), form=form)


@bp.route('/follow/<username>', methods=['POST'])
@login_required
def follow(username):
    return _change_following(username, follow=True)


@bp.route('/unfollow/<username>', methods=['POST'])
@login_required
def unfollow(username):
    return _change_following(username, follow=False)


def _change_following(username: str, follow: bool):
    if not EmptyForm().validate_on_submit():
        return redirect(url_for('main.index'))
    if not current_user.email_confirmed:
        flash(str(CONFIRM_FIRST), 'warning')
        return redirect(url_for('main.index'))
    user = User.by_username(username)
    if user is None or user.deleted_at is not None:
        flash(_('User %(name)s not found.', name=username), 'warning')
        return redirect(url_for('main.index'))
    if user == current_user:
        flash(_('You cannot follow yourself!'), 'warning')
    elif follow:
        current_user.follow(user)
        commit_unless_conflict()  # lost a race to an identical follow: done
        flash(_('You are following %(name)s!', name=username), 'success')
    else:
        current_user.unfollow(user)
        db.session.commit()
        flash(_('You are not following %(name)s.', name=username), 'info')
    return redirect(url_for('main.user', username=username))


@bp.route('/avatar/<seed>')
def avatar(seed):
    """A local identicon drawn from an account's random avatar seed (the
    default; GRAVATAR turns it off)."""
    size = max(16, min(request.args.get('size', 80, type=int), 512))
    bits = hashlib.sha256(seed.encode()).digest()
    hue = bits[0] * 360 // 256
    cells = []
    for i in range(15):
        if bits[1 + i] & 1:
            x, y = i % 3, i // 3
            for col in {x, 4 - x}:
                cells.append(f'<rect x="{col}" y="{y}" width="1" height="1"/>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="-0.5 -0.5 6 6"><rect x="-0.5" y="-0.5" width="6" height="6" '
        f'fill="#f0f0f0"/><g fill="hsl({hue},55%,50%)">{"".join(cells)}</g></svg>'
    )
    response = Response(svg, mimetype='image/svg+xml')
    response.cache_control.public = True
    response.cache_control.max_age = 86400
    return response
