"""Ed25519 signatures over a model file's manifest hash (the ``sign`` extra).

A signed ``.ernn`` file holds ``manifest.sig``: canonical JSON
``{"algorithm": "ed25519", "key_sha256": <hex SHA-256 of the raw 32-byte public
key>, "signature": <hex of 64 bytes>}``. The signed message is
:data:`CONTEXT` followed by the 32-byte SHA-256 of ``manifest.json``; the
manifest lists the SHA-256 of every array, so the signature covers the whole
model.

Keys are given as a ``cryptography`` key object, PEM bytes, 32 raw bytes, or
the path of a file holding PEM (``edgernn keygen`` writes a pair).
``cryptography`` is imported only when a signature is made or checked.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import EdgeRNNError, ModelFormatError

__all__ = ["CONTEXT", "sign", "verify", "public_key_bytes", "private_key_fingerprint",
           "generate_key_pem"]

CONTEXT = b"edgernn manifest sha256 v1\n"
_HEX = re.compile(r"[0-9a-f]+")


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise EdgeRNNError("signatures need the 'sign' extra (pip install 'edgernn[sign]'): "
                           f"{exc}") from None
    return ed25519, serialization, InvalidSignature


def _key_material(key, what: str) -> bytes:
    if isinstance(key, (str, Path)):
        try:
            with open(key, "rb") as fh:
                return fh.read(1 << 16)
        except OSError as exc:
            raise EdgeRNNError(f"cannot read the {what} key {str(key)!r}: "
                               f"{exc.strerror or exc}") from None
    if isinstance(key, (bytes, bytearray)):
        return bytes(key)
    raise EdgeRNNError(f"{what} key: expected a path, PEM or 32 raw bytes, got "
                       f"{type(key).__name__}")


def _load(key, private: bool):
    ed25519, serialization, _ = _crypto()
    cls = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if isinstance(key, cls):
        return key
    what = "private" if private else "public"
    data = _key_material(key, what)
    try:
        if len(data) == 32:
            return cls.from_private_bytes(data) if private else cls.from_public_bytes(data)
        if private:
            loaded = serialization.load_pem_private_key(data, password=None)
        else:
            loaded = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        where = f" {str(key)!r}" if isinstance(key, (str, Path)) else ""
        raise EdgeRNNError(f"{what} key{where}: not an Ed25519 key in PEM or raw 32-byte "
                           f"form") from None
    if not isinstance(loaded, cls):
        raise EdgeRNNError(f"{what} key: expected an Ed25519 key, got "
                           f"{type(loaded).__name__}")
    return loaded


def public_key_bytes(key) -> bytes:
    """The raw 32 bytes of a public key (or of a private key's public half)."""
    _, serialization, _ = _crypto()
    try:
        obj = _load(key, private=False)
    except EdgeRNNError as first:
        try:
            obj = _load(key, private=True).public_key()
        except EdgeRNNError:
            raise first from None
    return obj.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_key_fingerprint(private_key) -> str:
    """Hex SHA-256 of the public half of ``private_key``; raises EdgeRNNError if it is none."""
    _, serialization, _ = _crypto()
    pub = _load(private_key, private=True).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(pub).hexdigest()


def sign(digest: bytes, private_key) -> dict:
    """The ``manifest.sig`` document signing the manifest ``digest`` (32 bytes)."""
    key = _load(private_key, private=True)
    _, serialization, _ = _crypto()
    pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return {"algorithm": "ed25519", "key_sha256": hashlib.sha256(pub).hexdigest(),
            "signature": key.sign(CONTEXT + digest).hex()}


def check_document(doc) -> None:
    """Raise ModelFormatError unless ``doc`` has exactly the ``manifest.sig`` fields."""
    want = {"algorithm", "key_sha256", "signature"}
    if not isinstance(doc, dict) or set(doc) != want:
        got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise ModelFormatError(f"manifest.sig: expected the fields {sorted(want)}, got {got}")
    if doc["algorithm"] != "ed25519":
        raise ModelFormatError(f"manifest.sig.algorithm: expected 'ed25519', got "
                               f"{doc['algorithm']!r}")
    for field, n in (("key_sha256", 64), ("signature", 128)):
        v = doc[field]
        if not isinstance(v, str) or len(v) != n or not _HEX.fullmatch(v):
            raise ModelFormatError(f"manifest.sig.{field}: expected {n} lowercase hex digits, "
                                   f"got {v!r:.80}")


def verify(doc: dict, digest: bytes, public_key) -> str:
    """Check ``doc`` (a ``manifest.sig``) against ``digest``; returns the key's SHA-256 hex.

    Raises
    ------
    ModelFormatError
        When the signature was made with another key or does not verify.
    """
    check_document(doc)
    _, _, invalid = _crypto()
    key = _load(public_key, private=False)
    pub = public_key_bytes(key)
    fingerprint = hashlib.sha256(pub).hexdigest()
    if doc["key_sha256"] != fingerprint:
        raise ModelFormatError(f"manifest.sig: signed with key {doc['key_sha256'][:16]}..., "
                               f"not with the given public key {fingerprint[:16]}...")
    try:
        key.verify(bytes.fromhex(doc["signature"]), CONTEXT + digest)
    except invalid:
        raise ModelFormatError("manifest.sig: the signature does not verify: the manifest "
                               "or the signature was altered") from None
    return fingerprint


def generate_key_pem() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, public PEM)."""
    ed25519, serialization, _ = _crypto()
    key = ed25519.Ed25519PrivateKey.generate()
    priv = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub
