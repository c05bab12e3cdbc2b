"""A software authenticator for the passkey tests: EC P-256 keys made with
`cryptography`, authenticator data and the "none" attestation object
built byte by byte and encoded with CBOR, answers in the JSON form that
browsers post (PublicKeyCredential.toJSON())."""

import base64
import hashlib
import json
import secrets
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes(16)  # "none" attestation: all zeros


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))


class Credential:
    def __init__(self, user_handle: bytes, backup_eligible: bool):
        self.id = secrets.token_bytes(16)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.user_handle = user_handle
        self.sign_count = 0
        self.backup_eligible = backup_eligible

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, 'big'),
                -3: numbers.y.to_bytes(32, 'big'),
            }
        )

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


class SoftAuthenticator:
    """Makes passkeys and answers requests the way a phone would; each
    argument lets a test break one rule."""

    def __init__(self, origin: str = 'http://localhost', counter: bool = True):
        self.origin = origin
        self.counter = counter  # False: a synced passkey, its counter always 0
        self.credentials: list[Credential] = []

    def _auth_data(self, rp_id: str, flags: int, count: int, extra=b'') -> bytes:
        rp_hash = hashlib.sha256(rp_id.encode()).digest()
        return rp_hash + bytes([flags]) + struct.pack('>I', count) + extra

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                'type': kind,
                'challenge': challenge,
                'origin': origin or self.origin,
                'crossOrigin': False,
            }
        ).encode()

    def create(
        self,
        options: dict,
        origin: str | None = None,
        verified: bool = True,
        backup_eligible: bool = False,
        rp_id: str | None = None,
    ) -> dict:
        """An answer to navigator.credentials.create(options)."""
        credential = Credential(unb64(options['user']['id']), backup_eligible)
        self.credentials.append(credential)
        flags = UP | AT | (UV if verified else 0) | (BE if backup_eligible else 0)
        attested = (
            AAGUID
            + struct.pack('>H', len(credential.id))
            + credential.id
            + credential.cose_key()
        )
        rp = rp_id or options['rp']['id']
        auth_data = self._auth_data(rp, flags, 0, attested)
        attestation = cbor2.dumps({'fmt': 'none', 'attStmt': {}, 'authData': auth_data})
        client_data = self._client_data('webauthn.create', options['challenge'], origin)
        return {
            'id': b64(credential.id),
            'rawId': b64(credential.id),
            'type': 'public-key',
            'authenticatorAttachment': 'platform',
            'clientExtensionResults': {},
            'response': {
                'clientDataJSON': b64(client_data),
                'attestationObject': b64(attestation),
                'transports': ['internal', 'hybrid'],
            },
        }

    def get(
        self,
        options: dict,
        credential: Credential | None = None,
        origin: str | None = None,
        verified: bool = True,
        backed_up: bool | None = None,
        backup_eligible: bool | None = None,
        count: int | None = None,
    ) -> dict:
        """An answer to navigator.credentials.get(options), signed by
        `credential` (default: the newest)."""
        credential = credential or self.credentials[-1]
        if count is None:
            if self.counter:
                credential.sign_count += 1
            count = credential.sign_count
        eligible = (
            credential.backup_eligible if backup_eligible is None else backup_eligible
        )
        flags = UP | (UV if verified else 0) | (BE if eligible else 0)
        if backed_up if backed_up is not None else eligible:
            flags |= BS
        auth_data = self._auth_data(options['rpId'], flags, count)
        client_data = self._client_data('webauthn.get', options['challenge'], origin)
        signature = credential.sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            'id': b64(credential.id),
            'rawId': b64(credential.id),
            'type': 'public-key',
            'authenticatorAttachment': 'platform',
            'clientExtensionResults': {},
            'response': {
                'clientDataJSON': b64(client_data),
                'authenticatorData': b64(auth_data),
                'signature': b64(signature),
                'userHandle': b64(credential.user_handle),
            },
        }


# Passkeys need a domain name: the tests serve the app as `localhost`.
PASSKEY_APP = {
    'SERVER_NAME': 'localhost',
    'PREFERRED_URL_SCHEME': 'http',
    'REAUTH_WINDOW': 600,
}


def add_passkey(client, authenticator: SoftAuthenticator, **kw):
    """Through /passkeys/options and /passkeys/add: the response."""
    options = client.post('/passkeys/options').get_json()
    answer = authenticator.create(options, **kw)
    return client.post('/passkeys/add', data={'credential': json.dumps(answer)})


def use_passkey(client, authenticator: SoftAuthenticator, where: str, **kw):
    """Answer the passkey request at `where` ('/login/passkey',
    '/login/verify/passkey', '/reauthenticate/passkey'): the response."""
    path, _, query = where.partition('?')
    options = client.post(path + '/options').get_json()
    answer = authenticator.get(options, **kw)
    return client.post(where, data={'credential': json.dumps(answer)})
