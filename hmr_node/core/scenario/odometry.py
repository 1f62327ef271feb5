"""The robot's true planar path and its wheel odometry with drift and noise.

Model (defaults of :class:`OdometryConfig`; ``s`` = ``scale``)
---------------------------------------------------------------
True path: a unicycle on a flat floor starting at the origin facing +x. Forward speed and
yaw rate are independent Ornstein-Uhlenbeck processes (stationary, sampled exactly at the
frame times): speed mean 0.4 m/s, std 0.2 m/s, correlation time 3 s, clipped to [0, 1] m/s;
yaw rate mean 0, std 0.15 rad/s, correlation time 2 s. Between samples the robot moves on
a circular arc with the sample's speed and yaw rate.

Odometry (what the robot believes, ``/odom`` and TF ``odom -> base_link``) integrates the
measured velocities with the same arc integrator, starting at the true start pose:

    v_meas = v * (1 + s * e_scale) + s * sigma_v * n_v          (eq. O1)
    w_meas = w + s * b_yaw + s * sigma_w * n_w                   (eq. O2)

with per-recording constants ``e_scale ~ N(0, 0.02^2)`` (wheel radius error, 2 %) and
``b_yaw ~ N(0, 0.01^2)`` rad/s (heading-rate bias, ~0.6 deg/s), and white noise
``sigma_v = 0.02`` m/s, ``sigma_w = 0.02`` rad/s per sample. ``scale = 0`` gives odometry
identical to the true path. The odom frame coincides with the true world frame at t = 0.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(frozen=True)
class OdometryConfig:
    """True-path and odometry noise parameters (see the module docstring).

    speed_mean: mean forward speed, m/s.
    speed_std: stationary std of the forward speed, m/s.
    speed_tau: correlation time of the speed, s.
    max_speed: speeds are clipped to [0, max_speed], m/s.
    yaw_rate_std: stationary std of the yaw rate, rad/s.
    yaw_rate_tau: correlation time of the yaw rate, s.
    scale_error_std: std of the per-recording relative speed scale error.
    yaw_rate_bias_std: std of the per-recording yaw-rate bias, rad/s.
    speed_noise_std: white noise on each measured speed sample, m/s.
    yaw_rate_noise_std: white noise on each measured yaw-rate sample, rad/s.
    scale: multiplier on the four odometry error terms; 0 = perfect odometry.
    """

    speed_mean: float = 0.4
    speed_std: float = 0.2
    speed_tau: float = 3.0
    max_speed: float = 1.0
    yaw_rate_std: float = 0.15
    yaw_rate_tau: float = 2.0
    scale_error_std: float = 0.02
    yaw_rate_bias_std: float = 0.01
    speed_noise_std: float = 0.02
    yaw_rate_noise_std: float = 0.02
    scale: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"OdometryConfig.{f.name} must be a finite number >= 0, "
                                 f"got {value!r}")
        for name in ("speed_tau", "yaw_rate_tau"):
            if getattr(self, name) <= 0:
                raise ValueError(f"OdometryConfig.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class PlanarTrajectory:
    """A planar robot trajectory sampled at the frame times.

    times: (T,) seconds from the start.
    pose: (T, 3) x, y (metres) and yaw (radians) of base_link in the (odom/world) frame.
    speed: (T,) forward speed used from sample k to k+1, m/s.
    yaw_rate: (T,) yaw rate used from sample k to k+1, rad/s.
    """

    times: np.ndarray
    pose: np.ndarray
    speed: np.ndarray
    yaw_rate: np.ndarray


def integrate_unicycle(speed: np.ndarray, yaw_rate: np.ndarray, dt: float,
                       start: np.ndarray) -> np.ndarray:
    """Exact circular-arc integration of body velocities.

    speed: (T,) forward speed held from sample k to k+1, m/s.
    yaw_rate: (T,) yaw rate held from sample k to k+1, rad/s.
    dt: sample period, s.
    start: (3,) x, y, yaw of sample 0.
    Returns (T, 3) poses; pose k+1 = pose k moved along the arc of (speed[k], yaw_rate[k]).
    """
    speed = np.asarray(speed, dtype=np.float64)
    yaw_rate = np.asarray(yaw_rate, dtype=np.float64)
    dtheta = yaw_rate[:-1] * dt
    theta = start[2] + np.concatenate(([0.0], np.cumsum(dtheta)))
    # chord of an arc: travel v dt along the mean heading, shortened by sinc(dtheta / 2)
    half = 0.5 * dtheta
    chord = speed[:-1] * dt * np.sinc(half / np.pi)
    mid = theta[:-1] + half
    x = start[0] + np.concatenate(([0.0], np.cumsum(chord * np.cos(mid))))
    y = start[1] + np.concatenate(([0.0], np.cumsum(chord * np.sin(mid))))
    return np.stack([x, y, theta], axis=-1)


def _ou(rng: np.random.Generator, n: int, dt: float, mean: float, std: float,
        tau: float) -> np.ndarray:
    """Stationary Ornstein-Uhlenbeck samples: x_{k+1} = m + a (x_k - m) + std sqrt(1-a^2) n."""
    a = np.exp(-dt / tau)
    z = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = mean + std * z[0]
    for k in range(1, n):
        x[k] = mean + a * (x[k - 1] - mean) + std * np.sqrt(1.0 - a * a) * z[k]
    return x


def simulate_true_path(num_frames: int, fps: float, rng: np.random.Generator,
                       config: OdometryConfig) -> PlanarTrajectory:
    """Sample the robot's true trajectory (starts at the origin, facing +x).

    num_frames: number of samples T >= 1.
    fps: sample rate, Hz.
    rng: random generator (consumed identically for a given num_frames).
    config: path parameters.
    """
    dt = 1.0 / fps
    speed = np.clip(_ou(rng, num_frames, dt, config.speed_mean, config.speed_std,
                        config.speed_tau), 0.0, config.max_speed)
    yaw_rate = _ou(rng, num_frames, dt, 0.0, config.yaw_rate_std, config.yaw_rate_tau)
    pose = integrate_unicycle(speed, yaw_rate, dt, np.zeros(3))
    return PlanarTrajectory(np.arange(num_frames) * dt, pose, speed, yaw_rate)


def simulate_odometry(true_path: PlanarTrajectory, fps: float, rng: np.random.Generator,
                      config: OdometryConfig) -> PlanarTrajectory:
    """Wheel odometry of a true path: measured velocities (eqs. O1, O2) integrated.

    true_path: the robot's true trajectory.
    fps: sample rate, Hz.
    rng: random generator (consumed identically whatever ``config.scale``).
    config: noise parameters.
    """
    n = true_path.speed.shape[0]
    s = config.scale
    e_scale = config.scale_error_std * rng.standard_normal()
    b_yaw = config.yaw_rate_bias_std * rng.standard_normal()
    n_v = rng.standard_normal(n)
    n_w = rng.standard_normal(n)
    if s == 0:
        speed, yaw_rate = true_path.speed.copy(), true_path.yaw_rate.copy()
    else:
        speed = true_path.speed * (1.0 + s * e_scale) + s * config.speed_noise_std * n_v
        yaw_rate = true_path.yaw_rate + s * b_yaw + s * config.yaw_rate_noise_std * n_w
    pose = integrate_unicycle(speed, yaw_rate, 1.0 / fps, true_path.pose[0])
    return PlanarTrajectory(true_path.times.copy(), pose, speed, yaw_rate)


def odometry_covariances(odom: PlanarTrajectory, config: OdometryConfig
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Row-major 6x6 covariances for nav_msgs/Odometry from the noise model.

    odom: the odometry trajectory.
    config: noise parameters.
    Returns ``pose_cov`` (T, 36) and ``twist_cov`` (T, 36) over (x, y, z, roll, pitch, yaw):
    position variance grows with the distance travelled (scale error) and the heading
    variance with time (yaw-rate bias); z, roll and pitch get 1e-6 (planar robot).
    """
    s2 = config.scale ** 2
    step = np.linalg.norm(np.diff(odom.pose[:, :2], axis=0), axis=1)
    dist = np.concatenate(([0.0], np.cumsum(step)))
    dt = odom.times[1] - odom.times[0] if odom.times.shape[0] > 1 else 0.0
    n = odom.times.shape[0]
    pos_var = 1e-6 + s2 * (config.scale_error_std * dist) ** 2 \
        + s2 * config.speed_noise_std ** 2 * dt * odom.times
    yaw_var = 1e-6 + s2 * (config.yaw_rate_bias_std * odom.times) ** 2 \
        + s2 * config.yaw_rate_noise_std ** 2 * dt * odom.times
    pose_cov = np.zeros((n, 6, 6))
    pose_cov[:, 0, 0] = pose_cov[:, 1, 1] = pos_var
    pose_cov[:, 2, 2] = pose_cov[:, 3, 3] = pose_cov[:, 4, 4] = 1e-6
    pose_cov[:, 5, 5] = yaw_var
    twist_cov = np.zeros((n, 6, 6))
    twist_cov[:, 0, 0] = 1e-6 + s2 * (config.speed_noise_std ** 2
                                      + (config.scale_error_std * odom.speed) ** 2)
    twist_cov[:, 1, 1] = twist_cov[:, 2, 2] = twist_cov[:, 3, 3] = twist_cov[:, 4, 4] = 1e-6
    twist_cov[:, 5, 5] = 1e-6 + s2 * (config.yaw_rate_noise_std ** 2 + config.yaw_rate_bias_std ** 2)
    return pose_cov.reshape(n, 36), twist_cov.reshape(n, 36)
