"""The WebAuthn ceremonies on py_webauthn: options for the browser, and the
checks of its answers. Every refusal is a `Refused` with a plain message.

The relying party is SERVER_NAME's host and the origin PREFERRED_URL_SCHEME
plus SERVER_NAME, never the request's Host: a page served under another
name cannot use this site's passkeys. An IP address cannot be a relying
party, so passkeys are off when SERVER_NAME is one. Attestation is "none":
we ask no authenticator to say what make it is (privacy), and accept any.
"""

import ipaddress
import json

import webauthn
from flask import current_app
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers import parse_registration_credential_json as parse_new
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.i18n import lazy_gettext as _l
from app.models import User
from app.passkeys.models import Ceremony, Passkey
from app.security import audit

RP_NAME = 'Microblog'
ALGORITHMS = [
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
TIMEOUT_MS = 180_000
MAX_ANSWER = 8192  # bytes of JSON; real answers are under 2 KB

EXPIRED = _l('That passkey request expired or was already used. Please try again.')
UNREADABLE = _l('That passkey answer could not be read. Please try again.')
UNKNOWN = _l('That passkey is not registered here. Sign in another way.')
NOT_YOURS = _l('That passkey belongs to another account. Use one of yours.')
NOT_VERIFIED = _l('That passkey could not be verified. Please try again.')
REPLAYED = _l('That passkey answer was already used. Please try again.')


class Refused(Exception):
    """A passkey answer refused; str(error) is for the person."""


def rp_id() -> str | None:
    """SERVER_NAME's host, or None when it is an IP address (or unset)."""
    name = current_app.config.get('SERVER_NAME') or ''
    host = name.rsplit(':', 1)[0] if not name.startswith('[') else name
    host = host.strip('[]').lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host or None
    return None


def available() -> bool:
    return rp_id() is not None


def origin() -> str:
    scheme = current_app.config['PREFERRED_URL_SCHEME']
    name = current_app.config['SERVER_NAME'].lower()
    default = {'http': ':80', 'https': ':443'}.get(scheme, '')
    if default and name.endswith(default):
        name = name[: -len(default)]
    return f'{scheme}://{name}'


def _descriptors(user: User) -> list[PublicKeyCredentialDescriptor]:
    descriptors = []
    for passkey in Passkey.list_for(user):
        transports = [
            AuthenticatorTransport(t)
            for t in passkey.transports.split(',')
            if t in AuthenticatorTransport._value2member_map_
        ]
        descriptors.append(
            PublicKeyCredentialDescriptor(
                id=passkey.credential_id, transports=transports or None
            )
        )
    return descriptors


def registration_options(user: User) -> str:
    """Options for navigator.credentials.create(), as JSON (no commit):
    a discoverable credential with user verification."""
    handle = Passkey.handle_for(user)
    options = webauthn.generate_registration_options(
        rp_id=rp_id(),
        rp_name=RP_NAME,
        user_name=user.username,
        user_id=handle,
        challenge=Ceremony.begin('register', user.id, handle),
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(user),
        supported_pub_key_algs=ALGORITHMS,
    )
    return webauthn.options_to_json(options)


def authentication_options(purpose: str, user: User | None = None) -> str:
    """Options for navigator.credentials.get(), as JSON (no commit): any
    passkey of this site (sign-in) or one of `user`'s."""
    options = webauthn.generate_authentication_options(
        rp_id=rp_id(),
        challenge=Ceremony.begin(purpose, user.id if user else None),
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(user) if user else None,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return webauthn.options_to_json(options)


def _load(answer: str | None) -> dict:
    if not answer or len(answer) > MAX_ANSWER:
        raise Refused(UNREADABLE)
    try:
        data = json.loads(answer)
    except (ValueError, RecursionError):  # RecursionError: `[[[[...`
        raise Refused(UNREADABLE) from None
    if not isinstance(data, dict):
        raise Refused(UNREADABLE)
    return data


def _refuse(message: str, error: Exception | None = None, **fields):
    """Log why (the library's words name no secret), then refuse."""
    reason = f'{type(error).__name__}: {error}'[:200] if error else None
    audit('passkey_refused', reason=reason, **fields)
    raise Refused(message) from error


def verify_registration(user: User, answer: str | None, name: str) -> Passkey:
    """A new passkey for `user` from the browser's answer (no commit)."""
    ceremony = Ceremony.take('register', user.id)
    data = _load(answer)
    if ceremony is None:
        _refuse(EXPIRED, account=user.id)
    try:
        credential = parse_new(data)
        verified = webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=ceremony.challenge,
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except Exception as error:  # any flaw in untrusted bytes is a refusal
        _refuse(NOT_VERIFIED, error, account=user.id)
    if Passkey.by_credential_id(verified.credential_id) is not None:
        _refuse(_l('That passkey is already registered.'), account=user.id)
    transports = credential.response.transports or []
    return Passkey(
        user_id=user.id,
        credential_id=verified.credential_id,
        user_handle=ceremony.user_handle,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        backup_eligible=(
            verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
        ),
        backed_up=verified.credential_backed_up,
        transports=','.join(t.value for t in transports)[:128],
        aaguid=verified.aaguid,
        name=name,
    )


def verify_assertion(purpose: str, answer: str | None, user: User | None = None):
    """The passkey that signed this answer (its counter and last use now
    updated, no commit). With `user`, it must be one of theirs."""
    ceremony = Ceremony.take(purpose, user.id if user else None)
    data = _load(answer)
    if ceremony is None:
        _refuse(EXPIRED, purpose=purpose)
    try:
        credential = parse_authentication_credential_json(data)
    except Exception as error:
        _refuse(UNREADABLE, error, purpose=purpose)
    passkey = Passkey.by_credential_id(credential.raw_id)
    if passkey is None:
        _refuse(UNKNOWN, purpose=purpose)
    handle = credential.response.user_handle
    if (user is not None and passkey.user_id != user.id) or (
        handle is not None and handle != passkey.user_handle
    ):
        _refuse(NOT_YOURS, purpose=purpose, account=passkey.user_id)
    try:
        verified = webauthn.verify_authentication_response(
            credential=credential,
            expected_challenge=ceremony.challenge,
            expected_rp_id=rp_id(),
            expected_origin=origin(),
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except Exception as error:  # any flaw in untrusted bytes is a refusal
        _refuse(NOT_VERIFIED, error, purpose=purpose, account=passkey.user_id)
    eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if eligible != passkey.backup_eligible:
        # Backup eligibility is fixed when a credential is made.
        _refuse(NOT_VERIFIED, purpose=purpose, account=passkey.user_id)
    if not passkey.record_use(verified.new_sign_count, verified.credential_backed_up):
        _refuse(REPLAYED, purpose=purpose, account=passkey.user_id)
    return passkey
