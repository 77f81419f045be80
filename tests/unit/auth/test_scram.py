"""SCRAM-SHA-256 verifiers, checked against the exchange in RFC 7677, section 3."""

from __future__ import annotations

import base64
import hashlib
import hmac

from restorebox.auth.scram import scram_sha256_verifier

# RFC 7677's example: user "user", password "pencil".
SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
AUTH_MESSAGE = (
    b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
)
CLIENT_PROOF = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_SIGNATURE = base64.b64decode("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def keys(verifier: str) -> tuple[bytes, bytes]:
    scheme, rest = verifier.split("$", 1)
    assert scheme == "SCRAM-SHA-256"
    params, secret = rest.split("$")
    iterations, salt = params.split(":")
    assert (int(iterations), base64.b64decode(salt)) == (4096, SALT)
    stored, server = secret.split(":")
    return base64.b64decode(stored), base64.b64decode(server)


def test_a_verifier_accepts_the_rfc_exchange_and_signs_like_the_server() -> None:
    stored_key, server_key = keys(scram_sha256_verifier("pencil", salt=SALT))
    # What a server does with a client's proof: recover the client key, hash it.
    signature = hmac.new(stored_key, AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(CLIENT_PROOF, signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    assert hmac.new(server_key, AUTH_MESSAGE, hashlib.sha256).digest() == SERVER_SIGNATURE


def test_the_wrong_password_gives_other_keys_and_salts_are_random_unless_given() -> None:
    assert keys(scram_sha256_verifier("pencil2", salt=SALT)) != keys(
        scram_sha256_verifier("pencil", salt=SALT)
    )
    assert scram_sha256_verifier("pencil") != scram_sha256_verifier("pencil")
    assert "pencil" not in scram_sha256_verifier("pencil")
