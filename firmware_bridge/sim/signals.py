"""Synthetic sensor signals for the simulated device, generated in blocks.

Each generator maps sample indices to a float32 block of shape (n, channels).
"""

from __future__ import annotations

import numpy as np

G = 9.81


class Imu:
    """6-axis IMU (ax, ay, az in m/s^2; gx, gy, gz in rad/s) with gestures.

    Every 2 s one gesture plays for 0.7 s, cycling shake (8 Hz on ax), tilt
    (rotation about x) and circle (gyro x/y in quadrature). ``channels`` other
    than 6 truncates or tiles the 6 axes (tiles with a small gain difference).
    """

    period_s = 2.0
    gestures = ("shake", "tilt", "circle")

    def __init__(self, rate: float, channels: int = 6, seed: int = 0) -> None:
        self.rate, self.channels = float(rate), channels
        self.rng = np.random.default_rng(seed)

    def gesture_at(self, t: float) -> str | None:
        k, u = divmod(t, self.period_s)
        if 0.5 <= u < 1.2:
            return self.gestures[int(k) % 3]
        return None

    def block(self, start: int, n: int) -> np.ndarray:
        t = (start + np.arange(n)) / self.rate
        k, u = np.divmod(t, self.period_s)
        active = (u >= 0.5) & (u < 1.2)
        which = k.astype(np.int64) % 3
        env = np.where(active, np.sin(np.pi * (u - 0.5) / 0.7) ** 2, 0.0)
        theta = np.where(active & (which == 1), 0.8 * env, 0.0)
        dtheta = np.gradient(theta, 1.0 / self.rate) if n > 1 else np.zeros(n)
        a = np.stack([np.zeros(n), G * np.sin(theta), G * np.cos(theta)], 1)
        w = np.stack([dtheta, np.zeros(n), np.zeros(n)], 1)
        shake = active & (which == 0)
        a[:, 0] += np.where(shake, 6.0 * env * np.sin(2 * np.pi * 8 * t), 0.0)
        circle = active & (which == 2)
        w[:, 0] += np.where(circle, 2.0 * env * np.sin(2 * np.pi * 2 * t), 0.0)
        w[:, 1] += np.where(circle, 2.0 * env * np.cos(2 * np.pi * 2 * t), 0.0)
        x = np.concatenate([a + self.rng.normal(0, 0.05, (n, 3)),
                            w + self.rng.normal(0, 0.01, (n, 3))], 1)
        reps = -(-self.channels // 6)
        gains = np.repeat(1.0 + 0.05 * np.arange(reps), 6)[: self.channels]
        return (np.tile(x, reps)[:, : self.channels] * gains).astype(np.float32)


class Vibration:
    """Accelerometer on a rotating shaft; from ``fault_at`` s a bearing fault.

    One frame carries ``channels`` consecutive samples of the waveform (a window
    at ``rate * channels`` Hz): shaft at 29.5 Hz and its harmonic, noise, and
    after the fault decaying 3 kHz rings repeating at 107 Hz.
    """

    def __init__(self, rate: float, channels: int = 16, seed: int = 0,
                 fault_at: float = 5.0) -> None:
        self.rate, self.channels, self.fault_at = float(rate), channels, fault_at
        self.rng = np.random.default_rng(seed)

    def block(self, start: int, n: int) -> np.ndarray:
        fs = self.rate * self.channels
        t = (start * self.channels + np.arange(n * self.channels)) / fs
        x = 0.5 * np.sin(2 * np.pi * 29.5 * t) + 0.2 * np.sin(2 * np.pi * 59 * t)
        x += self.rng.normal(0, 0.05, t.size)
        dt = np.mod(t, 1 / 107.0)
        ring = 1.5 * np.exp(-dt * 800.0) * np.sin(2 * np.pi * 3000.0 * dt)
        x += np.where(t >= self.fault_at, ring, 0.0)
        return x.reshape(n, self.channels).astype(np.float32)


SIGNALS = {"imu": Imu, "vibration": Vibration}
