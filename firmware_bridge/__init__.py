"""Serial bridge: serve an edgernn model to sensor firmware over a framed link.

- ``protocol``: the wire format (COBS + CRC-32 frames), pure functions and a Decoder
- ``link``: a pyserial URL with a reader thread, bounded queue and reconnect
- ``bridge``: one model stream per stream id, SAMPLE in, RESULT out, statistics
- ``cli``: ``edgernn bridge --port URL --model M.ernn``
- ``sim``: a simulated device (``python -m firmware_bridge.sim``); ``demo`` runs both
- ``c/``: the same protocol in C99 for the firmware (``ernl.h``)

Nothing here imports pyserial until a port is opened. docs/protocol.md describes
the format byte by byte.
"""
