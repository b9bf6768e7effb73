"""What the converters share, written once: gate orders (:mod:`.gates`), the TFLite
enum codes (:mod:`.tflite_codes`), state names asked of the op (:mod:`.state`) and
the last-resort error guard (:mod:`.guard`). Nothing here imports a source
framework."""
