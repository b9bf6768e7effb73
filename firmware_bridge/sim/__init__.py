"""A simulated sensor device for the serial bridge: ``python -m firmware_bridge.sim``."""

from firmware_bridge.sim.device import Device
from firmware_bridge.sim.signals import SIGNALS, Imu, Vibration
from firmware_bridge.sim.transports import PtyTransport, TcpTransport

__all__ = ["Device", "Imu", "PtyTransport", "SIGNALS", "TcpTransport", "Vibration"]
