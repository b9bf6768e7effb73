"""``edgernn sign MODEL --key KEY -o OUT``: a signed copy of a checked model file.

The model is loaded and checked whole first (nothing unloadable gets signed);
the copy holds the same manifest and arrays plus ``manifest.sha256`` and
``manifest.sig`` (:mod:`edgernn.format.signing`). A device then loads it with
``edgernn.load(path, require_signature=True, public_key=...)`` or
``edgernn run/inspect/bridge --public-key``. Needs the ``sign`` extra.
"""

from __future__ import annotations


def add_arguments(parser) -> None:
    """The options of ``edgernn sign``."""
    parser.add_argument("model", help="the .ernn file to sign")
    parser.add_argument("--key", required=True, help="Ed25519 private key (PEM, edgernn keygen)")
    parser.add_argument("-o", "--output", required=True, help="the signed .ernn file to write")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")


def run(args) -> int:
    """Write the signed copy; returns the exit status."""
    from ..format import archive, signing
    from ..model import load
    from .util import output_path

    out = output_path(args.output, [args.model, args.key], args.force)
    fingerprint = signing.private_key_fingerprint(args.key)
    load(args.model)
    contents = archive.read(args.model)
    archive.write(out, contents.manifest, contents.arrays, signing_key=args.key)
    print(f"wrote {out}: signed by key {fingerprint[:16]}... (manifest sha256 "
          f"{contents.manifest_sha256[:16]}...)")
    return 0
