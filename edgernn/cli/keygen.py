"""``edgernn keygen NAME``: a new Ed25519 key pair, ``NAME.key`` (private) and ``NAME.pub``.

Keep ``NAME.key`` on the machine that signs models (``edgernn sign``; it is
written readable by its owner only); copy ``NAME.pub`` to the devices, which
load with ``--public-key NAME.pub``. Needs the ``sign`` extra.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def add_arguments(parser) -> None:
    """The options of ``edgernn keygen``."""
    parser.add_argument("name", help="path prefix: writes NAME.key and NAME.pub")
    parser.add_argument("--force", action="store_true", help="replace existing key files")


def run(args) -> int:
    """Write the key pair; returns the exit status."""
    from ..format import signing
    from ..format.atomic import atomic_write
    from .util import output_path

    priv_path = output_path(Path(args.name + ".key"), (), args.force)
    pub_path = output_path(Path(args.name + ".pub"), (), args.force)
    priv, pub = signing.generate_key_pem()
    if priv_path.exists():
        priv_path.chmod(0o600)
    else:
        priv_path.touch(0o600)
    atomic_write(priv_path, lambda fh: fh.write(priv))
    atomic_write(pub_path, lambda fh: fh.write(pub))
    fingerprint = hashlib.sha256(signing.public_key_bytes(pub)).hexdigest()
    print(f"wrote {priv_path} (private: keep it secret) and {pub_path} (public: copy it to "
          f"devices); key {fingerprint[:16]}...")
    return 0
