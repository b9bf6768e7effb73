"""Op descriptions: one module per op kind, each registered in :data:`OPS`.

Importing this package imports every module in it, so that each op kind
registers itself (:func:`edgernn.ops.registry.register`); nothing else lists them.
"""

import importlib
import pkgutil

from .registry import OPS, op_from_config, register

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["OPS", "op_from_config", "register"]
