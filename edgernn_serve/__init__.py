"""``edgernn serve``: the on-device daemon (config, sources, batched stepping, sinks, metrics).

- ``config``: the TOML file, validated (errors name the key and the file)
- ``device``: the serial source (firmware_bridge protocol); ``sources``: stdin, udp,
  unix; ``wav``: WAV files
- ``scheduler``: one thread steps the frames of many streams in batched native calls
- ``models``: load, hash and validate a model; the batch of stream slots
- ``sinks``: stdout, file, udp, unix, serial; ``mqtt``: paho-mqtt with an offline buffer
- ``metrics``: Prometheus ``/metrics`` and ``/healthz``; ``notify``: systemd sd_notify
- ``daemon``: lifecycle, signals (SIGHUP reload, SIGTERM drain), accounting
- ``cli``: ``edgernn serve --config edgernn.toml``

Imports edgernn, firmware_bridge, prometheus_client and paho-mqtt (the ``daemon``
extra); never converters or torch. docs/serve.md is the user's reference.
"""
