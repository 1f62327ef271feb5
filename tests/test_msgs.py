"""hmr_msgs: the .msg files register with rosbags and every type round-trips through CDR."""
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hmr_node.tools.msg_types import MESSAGE_NAMES, find_msg_dir, hmr_typestore, msg_type_name

ROOT = Path(__file__).resolve().parents[1]


def _header(ts, frame="camera_optical_frame"):
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    return Header(stamp=Time(sec=12, nanosec=345), frame_id=frame)


def _keypoints(ts, k=17, seed=0):
    rng = np.random.default_rng(seed)
    K2 = ts.types[msg_type_name("Keypoints2D")]
    return K2(track_id=7, score=0.9, bbox=np.array([1, 2, 3, 4], dtype=np.float32),
              x=rng.random(k, dtype=np.float32), y=rng.random(k, dtype=np.float32),
              confidence=rng.random(k, dtype=np.float32))


def _person(ts, seed=0):
    Person = ts.types[msg_type_name("SmplPerson")]
    Q = ts.types["geometry_msgs/msg/Quaternion"]
    V3 = ts.types["geometry_msgs/msg/Vector3"]
    P = ts.types["geometry_msgs/msg/Point"]
    return Person(track_id=3, stage=Person.STAGE_REFINED, revision=2,
                  rotations=[Q(x=0.0, y=0.0, z=math.sin(i / 10), w=math.cos(i / 10)) for i in range(24)],
                  betas=np.arange(10, dtype=np.float32), transl=V3(x=0.1, y=0.2, z=3.0),
                  root_position=P(x=0.1, y=-0.1, z=3.0), confidence=0.8, fit_residual=float("nan"),
                  keypoints=_keypoints(ts, seed=seed), body_model="hmr_neutral")


def _assert_same(a, b):
    if hasattr(a, "__dataclass_fields__"):
        for f in a.__dataclass_fields__:
            _assert_same(getattr(a, f), getattr(b, f))
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    elif isinstance(a, float):  # float32 fields come back rounded to float32
        assert a == pytest.approx(b, rel=1e-7)
    else:
        assert a == b


def test_every_message_round_trips_through_cdr():
    ts = hmr_typestore()
    msgs = {
        "Keypoints2D": _keypoints(ts),
        "PeopleKeypoints2D": ts.types[msg_type_name("PeopleKeypoints2D")](
            header=_header(ts), keypoint_format="coco17", people=[_keypoints(ts, seed=1), _keypoints(ts, seed=2)]),
        "SmplPerson": _person(ts),
        "SmplPersonArray": ts.types[msg_type_name("SmplPersonArray")](header=_header(ts, "odom"),
                                                                      people=[_person(ts, 1), _person(ts, 2)]),
    }
    assert set(msgs) == set(MESSAGE_NAMES)
    for name, msg in msgs.items():
        raw = ts.serialize_cdr(msg, msg_type_name(name))
        back = ts.deserialize_cdr(raw, msg_type_name(name))
        _assert_same(msg, back)


def test_stage_constants_and_fixed_rotation_count():
    ts = hmr_typestore()
    Person = ts.types[msg_type_name("SmplPerson")]
    assert (Person.STAGE_FAST, Person.STAGE_REFINED, Person.STAGE_WORLD) == (0, 1, 2)
    bad = _person(ts)
    bad.rotations = bad.rotations[:23]
    with pytest.raises(Exception):
        ts.serialize_cdr(bad, msg_type_name("SmplPerson"))


def test_msg_files_are_the_ones_cmake_builds():
    cmake = (ROOT / "ros_ws/src/hmr_msgs/CMakeLists.txt").read_text()
    assert find_msg_dir() == ROOT / "ros_ws/src/hmr_msgs/msg"
    for name in MESSAGE_NAMES:
        assert f'"msg/{name}.msg"' in cmake


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not installed (apt-get install libxml2-utils)")
@pytest.mark.parametrize("path", ["package.xml", "ros_ws/src/hmr_msgs/package.xml"])
def test_package_xml_is_well_formed(path):
    subprocess.run(["xmllint", "--noout", str(ROOT / path)], check=True)


def test_package_xml_declares_format3_and_dependencies():
    import xml.etree.ElementTree as ET
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    deps = {e.text for e in root.iter("exec_depend")}
    for d in ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "tf2_ros", "visualization_msgs",
              "diagnostic_msgs", "hmr_msgs"):
        assert d in deps
    assert root.find("export/build_type").text == "ament_python"
    msgs = ET.parse(ROOT / "ros_ws/src/hmr_msgs/package.xml").getroot()
    assert msgs.find("export/build_type").text == "ament_cmake"
    assert "rosidl_interface_packages" in {e.text for e in msgs.iter("member_of_group")}
