"""What the converters share: gate orders, the TFLite activation codes, the
last-resort error guard. Nothing here imports a source framework."""
