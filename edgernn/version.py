"""The runtime's version (also written into every model file it saves)."""

__version__ = "0.2.0"
