"""MQTT sink (paho-mqtt): one JSON message per result on a per-device, per-stream topic.

A VAD stage's records (speech start and end, probabilities: :mod:`edgernn_serve.vad`)
go to ``vad_topic`` (default ``edgernn/{device}/{stream}/vad``) instead.

Delivery: results wait in a bounded buffer (``buffer`` messages, oldest dropped
first and counted) and are handed to paho only while the broker is connected,
at most ``inflight`` unacknowledged at a time. paho keeps every unacknowledged
QoS 1/2 message and sends it again after a reconnect; until those are
acknowledged no newer message is handed over, so a subscriber sees each
stream's results in order (QoS 1 may repeat one: at-least-once). A QoS 0
message written to a connection that then broke is lost and counted.
paho reconnects by itself with exponential backoff between ``reconnect_min``
and ``reconnect_max`` seconds.
"""

from __future__ import annotations

import logging
import string
import threading
import time
from collections import deque

from edgernn_serve.schema import ConfigError, name_problem
from edgernn_serve.sinks.base import Sink

log = logging.getLogger("edgernn.serve")

MAX_TOPIC = 65535  # bytes of UTF-8 (MQTT 3.1.1, 1.5.3)


def mqtt_url(text: str) -> tuple | None:
    """``mqtt://host[:port]`` / ``mqtts://...`` -> (tls, host, port), or None if malformed."""
    scheme, sep, rest = text.partition("://")
    rest = rest.rstrip("/")
    if not sep or scheme not in ("mqtt", "mqtts") or not rest or "/" in rest:
        return None
    tls = scheme == "mqtts"
    port = "8883" if tls else "1883"
    if rest.startswith("["):  # [v6] or [v6]:port
        host, _, tail = rest[1:].partition("]")
        if tail:
            if not tail.startswith(":"):
                return None
            port = tail[1:]
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    else:
        host = rest
    if not host or ":" in host and not rest.startswith("[") or not port.isdigit() \
            or not 0 < int(port) < 65536:
        return None
    return tls, host, int(port)


def _good_topic(s) -> bool:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(s) if f is not None}
    except ValueError:
        return False
    return s != "" and fields <= {"device", "stream"} and topic_problem(s) is None


def topic_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be published to, or None (wildcards, NUL, surrogates, length)."""
    try:
        n = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "holds a lone surrogate"
    if n > MAX_TOPIC:
        return f"is {n} bytes long (at most {MAX_TOPIC})"
    bad = set(topic) & set("+#\0")
    return f"holds {sorted(bad)[0]!r}" if bad else None


def mqtt_schema(t, source) -> dict:
    url = t.take("url", str, ..., lambda s: mqtt_url(s) is not None,
                 "'mqtt://host[:port]' or 'mqtts://host[:port]'")
    tls, host, port = mqtt_url(url)
    return {"tls": tls, "host": host, "port": port,
            "topic": t.take("topic", str, "edgernn/{device}/{stream}", _good_topic,
                            "a topic with only {device} and {stream} fields, no '+' or '#'"),
            "vad_topic": t.take("vad_topic", str, "edgernn/{device}/{stream}/vad", _good_topic,
                                "a topic with only {device} and {stream} fields, no '+' or "
                                "'#'"),
            "qos": t.take("qos", int, 1, lambda v: v in (0, 1, 2), "0, 1 or 2"),
            "retain": t.take("retain", bool, False),
            "client_id": t.take("client_id", str, None, lambda s: name_problem(s) is None,
                                "a client id without '+', '#', '/' or control characters"),
            "username": t.take("username", str, None),
            "password_file": t.path("password_file", None),
            "keepalive": t.take("keepalive", int, 30, lambda v: 5 <= v <= 3600, "5 to 3600 s"),
            "inflight": t.take("inflight", int, 100, lambda v: 1 <= v <= 65535, "1 to 65535"),
            "reconnect_min": t.take("reconnect_min", float, 0.1, lambda v: 0.01 <= v <= 60,
                                    "0.01 to 60 s"),
            "reconnect_max": t.take("reconnect_max", float, 10.0,
                                    lambda v: 0.01 <= v <= 3600, "0.01 to 3600 s")}


class MqttSink(Sink):
    """Publish results to an MQTT broker.

    Parameters
    ----------
    name, device : str
    o : dict
        Validated options of the ``[[sink]]`` table (host, port, tls, topic, qos,
        retain, client_id, username, password_file, keepalive, inflight, buffer,
        reconnect_min, reconnect_max).
    """

    type = "mqtt"
    buffered = True
    linger = 0.005  # seconds a burst may gather before it is published

    @classmethod
    def build(cls, conf, ctx) -> MqttSink:
        return cls(conf.name, ctx.device, conf.options)

    def __init__(self, name: str, device: str, o: dict) -> None:
        import paho.mqtt.client as mqtt

        super().__init__(name, device)
        self.o = o
        self.topic = o["topic"]
        self.vad_topic = o.get("vad_topic", "edgernn/{device}/{stream}/vad")
        self.qos, self.retain = o["qos"], o["retain"]
        self.capacity, self.window = o["buffer"], o["inflight"]
        self._q: deque = deque()
        self._cond = threading.Condition()
        self.connected = False
        self._resync = False  # after a reconnect: wait for paho's resends first
        self._handed = 0      # messages given to paho (feeder thread only)
        self._acked = 0       # on_publish callbacks (paho thread only)
        self._written_off = 0  # QoS 0 messages lost with a connection (paho thread only)
        self._connects = 0
        self._closing = False
        self._idle = False
        self.last_error: str | None = None
        self.bad_topics = 0  # results whose stream made an invalid topic (counted dropped)
        client_id = o["client_id"] or f"edgernn-{device}-{name}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=True)
        if o["username"] is not None:
            password = None
            if o["password_file"] is not None:
                try:
                    with open(o["password_file"], encoding="utf-8") as fh:
                        password = fh.read(4096).strip()
                except (OSError, UnicodeDecodeError) as e:
                    raise ConfigError(f"sink {name}: cannot read password_file "
                                      f"{o['password_file']}: {getattr(e, 'strerror', e)}"
                                      ) from None
            self.client.username_pw_set(o["username"], password)
        if o["tls"]:
            self.client.tls_set()
        self.client.max_inflight_messages_set(self.window)
        self.client.reconnect_delay_set(o["reconnect_min"], o["reconnect_max"])
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._thread = threading.Thread(target=self._feed, name=f"sink-{name}", daemon=True)

    # ------------------------------------------------------------ paho callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.warning("sink %s: %s", self.name, self.last_error)
            return
        self._connects += 1
        if self._connects > 1:
            self.reconnects += 1
            log.info("sink %s: reconnected to %s:%d", self.name, self.o["host"], self.o["port"])
        with self._cond:
            self.connected = True
            self._cond.notify()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        with self._cond:
            was = self.connected
            self.connected = False
            self._resync = True
            if self.qos == 0:  # nothing will acknowledge what was written to the dead link
                self._written_off += self._outstanding()
        if was and not self._closing:
            self.last_error = f"disconnected: {reason_code}"
            log.warning("sink %s: broker connection lost (%s); buffering up to %d messages",
                        self.name, reason_code, self.capacity)

    def _on_publish(self, client, userdata, mid, reason_code=None, properties=None) -> None:
        self._acked += 1
        self.delivered += 1
        if self._idle and self._q:  # the feeder may be waiting for room in the window
            with self._cond:
                self._cond.notify()

    def _outstanding(self) -> int:
        return self._handed - self._acked - self._written_off

    # ------------------------------------------------------------ sink API
    def start(self) -> None:
        self.client.connect_async(self.o["host"], self.o["port"], keepalive=self.o["keepalive"])
        self.client.loop_start()
        self._thread.start()

    def emit(self, results: list) -> None:
        with self._cond:
            self._q.extend(results)  # encoded by the feeder thread, off the stepping path
            excess = len(self._q) - self.capacity
            for _ in range(excess):
                self._q.popleft()
            if excess > 0:
                self.dropped += excess
            if self._idle:
                self._cond.notify()

    @property
    def pending(self) -> int:
        return len(self._q) + max(self._outstanding(), 0)

    def _ready(self) -> bool:
        if self._closing and not self.connected:
            return True
        if not (self.connected and self._q):
            return False
        out = self._outstanding()
        if self._resync:
            if out > 0:
                return False
            self._resync = False
        return out < self.window

    def _feed(self) -> None:
        while True:
            with self._cond:
                while not self._ready():
                    if self._closing and not self._q:
                        return
                    self._idle = True
                    self._cond.wait(0.1)
                    self._idle = False
                if self._closing and not self.connected:
                    return
            if not self._closing:  # let a burst gather: fewer wake-ups here and in paho
                time.sleep(self.linger)
            with self._cond:
                room = self.window - max(self._outstanding(), 0) if self.connected else 0
                batch = [self._q.popleft() for _ in range(min(len(self._q), room))]
            for i, r in enumerate(batch):
                if not self._publish(r):  # QoS 0 without a connection: keep the rest
                    with self._cond:
                        self._q.extendleft(reversed(batch[i:]))
                        self.connected, self._resync = False, True
                    break

    def _publish(self, r) -> bool:
        import paho.mqtt.client as mqtt

        vad = r.extra is not None and "event" in r.extra  # a VAD record (edgernn_serve.vad)
        topic = (self.vad_topic if vad else self.topic).format(device=self.device, stream=r.key)
        why = topic_problem(topic)
        if why is None:
            try:
                payload = self.line(r)[:-1]
                info = self.client.publish(topic, payload, qos=self.qos, retain=self.retain)
            except (ValueError, TypeError) as e:  # paho's own checks: never kill this thread
                why = str(e)
        if why is not None:
            self.dropped += 1
            self.bad_topics += 1
            self.last_error = f"stream {r.key!r}: topic {why}; result dropped"
            log.warning("sink %s: %s", self.name, self.last_error)
            return True
        if info.rc == mqtt.MQTT_ERR_SUCCESS or (self.qos > 0 and info.rc == mqtt.MQTT_ERR_NO_CONN):
            self._handed += 1  # paho holds it (QoS>0 is sent again after a reconnect)
        elif info.rc == mqtt.MQTT_ERR_NO_CONN:
            return False
        else:
            self.dropped += 1
            self.last_error = f"publish failed: {mqtt.error_string(info.rc)}"
        return True

    def flush(self, timeout: float) -> int:
        """As Sink.flush, but without a broker nothing can be delivered: no waiting."""
        end = time.monotonic() + timeout
        while self.pending and self.connected and time.monotonic() < end:
            time.sleep(0.005)
        return self.pending

    def close(self) -> None:
        """Safe in any state: never started, started, closed before."""
        with self._cond:
            if self._closing:
                return
            left = self.pending
            self._closing = True
            self._q.clear()
            self._cond.notify()
        self.dropped += left
        if self._thread.ident is not None:
            self._thread.join(1.0)
            self.client.disconnect()
            # paho's thread wakes from a reconnect wait within 1 s; we do not wait for it
            # (a daemon thread) when the broker is away: a stop must keep its 2 s
            stopper = threading.Thread(target=self.client.loop_stop, daemon=True)
            stopper.start()
            stopper.join(0.2 if not self.connected else 1.0)
