"""Loading and saving a :class:`Model` (the file itself is :mod:`edgernn.format`)."""

from __future__ import annotations

from ..engine import precompile
from ..errors import ModelFormatError
from ..format import modelfile
from ..format.manifest import check_sizes
from .model import Model

__all__ = ["load", "save", "read_manifest"]

read_manifest = modelfile.read_manifest


def load(path, require_signature: bool = False, public_key=None, limits=None):
    """Load an ``.ernn`` file as an :class:`edgernn.Model`, validating everything.

    Parameters
    ----------
    path : str or Path
    require_signature : bool
        Refuse a file whose manifest is not signed by ``public_key`` (a device
        accepting models over the air).
    public_key : Ed25519 public key, optional
        PEM or raw bytes, a path, or a ``cryptography`` key; a signed file is
        checked against it. Needs the ``sign`` extra.
    limits : edgernn.format.archive.Limits, optional
        Tighter (or looser) caps on sizes than the defaults.

    The model has ``manifest``, ``manifest_sha256`` (hex), ``manifest_hash_stored``,
    ``signature`` (the ``manifest.sig`` document or None) and ``signed_by`` (hex
    SHA-256 of the public key whose signature verified, or None).

    Raises
    ------
    ModelFormatError
        On any corrupt, truncated, tampered, inconsistent, unsigned (when
        required) or newer-version file.
    FileNotFoundError, IsADirectoryError, PermissionError
        When ``path`` cannot be opened.
    """
    man, kwargs, info = modelfile.read(path, require_signature, public_key, limits)
    try:
        model = Model(**kwargs)
        check_sizes(man, model)
    except ModelFormatError as exc:
        raise modelfile.fail(path, exc) from exc
    # everything the model runs is compiled (in parallel when the cache is cold) or
    # loaded from the cache, and the model packed, before the first frame
    precompile.ensure(precompile.kernels_of(model))
    model._segments()
    model.manifest = man
    model.manifest_sha256, model.manifest_hash_stored, model.signature, model.signed_by = info
    return model


def save(model: Model, path, signing_key=None) -> None:
    """Write ``model`` to an ``.ernn`` file atomically (see :mod:`edgernn.format.modelfile`).

    ``signing_key``: an Ed25519 private key (PEM bytes, raw 32 bytes, a path or a
    ``cryptography`` key; the ``sign`` extra) to sign the manifest with.
    """
    modelfile.save_model(model, path, signing_key=signing_key)
