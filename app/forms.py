"""Form pieces every blueprint shares: the base form, EmptyForm and the
shared fields. The input rules they apply live in app/validators.py."""

import re

from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length

from app.validators import Username, strip

# What no database column can hold: NUL, and halves of surrogate pairs.
UNSTORABLE = re.compile('[\x00\ud800-\udfff]')
ECHO_LIMIT = 256  # a refused value longer than its field is not echoed whole


def unstorable(value) -> bool:
    return isinstance(value, str) and UNSTORABLE.search(value) is not None


class BaseForm(FlaskForm):
    """Every form: refuses what the database cannot store, with a form error,
    and never echoes a refused overlong value back whole."""

    def validate(self, extra_validators=None) -> bool:
        # Before any validator can take the value to the database.
        refused = [field for field in self if unstorable(field.data)]
        for field in refused:
            field.errors = ['Remove the control characters.']
        valid = not refused and super().validate(extra_validators)
        for field in self:
            if field.errors and isinstance(field.data, str):
                field.data = field.data[: max_length(field)]
        return valid


def max_length(field) -> int:
    for validator in field.validators:
        if isinstance(validator, Length) and validator.max >= 0:
            return validator.max
    return ECHO_LIMIT


class EmptyForm(BaseForm):
    """Only a CSRF token and a button: for POST-only actions."""

    submit = SubmitField('Submit')


def username_field(**kwargs) -> StringField:
    return StringField(
        'Username',
        filters=[strip],
        validators=[DataRequired(), Length(max=64), Username()],
        **kwargs,
    )


def field_html(field) -> Markup:
    """A field as Bootstrap 5 markup: the label tied to the input, errors
    inline under it and named by aria-describedby, aria-invalid on error.
    The same markup as Bootstrap-Flask's render_field, built in Python: as
    nested Jinja macros it took half of the sign-in page's time."""
    id_, name = escape(field.id), escape(field.name)
    kind = getattr(field.widget, 'input_type', None)
    if kind == 'hidden':
        value = escape(field._value())
        return Markup(f'<input id="{id_}" name="{name}" type="hidden" value="{value}">')
    if kind == 'submit':
        label = escape(field.label.text)
        return Markup(
            f'<input class="btn btn-primary" id="{id_}" name="{name}" '
            f'type="submit" value="{label}">'
        )
    invalid, aria, errors = '', '', ''
    if field.errors:
        invalid = ' is-invalid'
        aria = f' aria-invalid="true" aria-describedby="{id_}-error"'
        named = f' id="{id_}-error"'  # the first error, for aria-describedby
        errors = ''.join(
            f'\n<div class="invalid-feedback d-block"{named if i == 0 else ""}>'
            f'{escape(error)}</div>'
            for i, error in enumerate(field.errors)
        )
    label = escape(field.label.text)
    if kind == 'checkbox':
        checked = ' checked' if field.data else ''
        return Markup(
            f'<div class="mb-3 form-check">\n<input class="form-check-input{invalid}" '
            f'id="{id_}" name="{name}" type="checkbox" value="y"{checked}{aria}>\n'
            f'<label class="form-check-label" for="{id_}">{label}</label>{errors}\n'
            '</div>'
        )
    attrs = f'class="form-control{invalid}" id="{id_}" name="{name}"'
    if field.flags.required:
        attrs += ' required'
    if field.flags.maxlength:
        attrs += f' maxlength="{escape(field.flags.maxlength)}"'
    for key, value in (field.render_kw or {}).items():
        attrs += f' {escape(key)}="{escape(value)}"'
    attrs += aria
    if field.type == 'TextAreaField':
        control = f'<textarea {attrs} rows="3">{escape(field._value())}</textarea>'
    elif kind == 'password':
        control = f'<input type="password" {attrs}>'
    else:
        value = escape(field._value())
        control = f'<input type="{escape(kind or "text")}" {attrs} value="{value}">'
    required = ' required' if field.flags.required else ''
    return Markup(
        f'<div class="mb-3{required}">\n'
        f'<label class="form-label" for="{id_}">{label}</label>\n'
        f'{control}{errors}\n</div>'
    )
