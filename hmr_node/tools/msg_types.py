"""Register hmr_msgs' ``.msg`` files with a ``rosbags`` typestore at run time.

The ``.msg`` files in ``ros_ws/src/hmr_msgs/msg`` are the single source of truth: colcon
builds them for ROS, and the offline tools (scenario writer, bag replay) read the same files
here. They are found, in order, in ``$HMR_MSGS_DIR``, next to this source tree (a checkout or
an editable install), or in an installed ROS workspace (``$AMENT_PREFIX_PATH/share/hmr_msgs/msg``).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

PACKAGE = "hmr_msgs"
# dependency order: nested types first
MESSAGE_NAMES = ("Keypoints2D", "PeopleKeypoints2D", "SmplPerson", "SmplPersonArray")
DEFAULT_STORE = Stores.ROS2_HUMBLE


def find_msg_dir() -> Path:
    """Directory holding hmr_msgs' .msg files (see module docstring for the search order)."""
    candidates = []
    if os.environ.get("HMR_MSGS_DIR"):
        candidates.append(Path(os.environ["HMR_MSGS_DIR"]))
    candidates.append(Path(__file__).resolve().parents[2] / "ros_ws" / "src" / PACKAGE / "msg")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE / "msg")
    for c in candidates:
        if all((c / f"{n}.msg").is_file() for n in MESSAGE_NAMES):
            return c
    raise FileNotFoundError(
        f"hmr_msgs .msg files not found; looked in {[str(c) for c in candidates]}. Set HMR_MSGS_DIR.")


def msg_type_name(name: str) -> str:
    """'SmplPerson' -> 'hmr_msgs/msg/SmplPerson'."""
    return f"{PACKAGE}/msg/{name}"


def register_hmr_msgs(typestore) -> None:
    """Add hmr_msgs' types to a rosbags typestore (idempotent)."""
    msg_dir = find_msg_dir()
    types = {}
    for name in MESSAGE_NAMES:
        types.update(get_types_from_msg((msg_dir / f"{name}.msg").read_text(), msg_type_name(name)))
    typestore.register(types)


@lru_cache(maxsize=None)
def hmr_typestore(store: Stores = DEFAULT_STORE):
    """A rosbags typestore with the ROS 2 standard messages of ``store`` plus hmr_msgs."""
    ts = get_typestore(store)
    register_hmr_msgs(ts)
    return ts
