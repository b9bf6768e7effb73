"""The ``.ernn`` model file: a bounded zip reader and writer, the manifest and its schema,
signatures, atomic writes."""
