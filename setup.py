"""hmr_node: an ament_python ROS 2 package that also installs with plain pip (no ROS needed).

colcon builds it through this file (``cd ros_ws && colcon build``); off ROS,
``pip install -e .[test]`` gives the core library, the ``hmr`` CLI and the tests.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "hmr_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="3D human body pose and shape (SMPL) of people around a robot: ScoreHMR + DiffOpt",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    package_data={PACKAGE: ["core/body/assets/*.npz", "core/body/assets/*.md", "models/*/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    # Plain ranges for users elsewhere; the CPU machines here install torch==2.13.0 first
    # (see README / constraints.txt) and every range below is satisfied by it.
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "torch>=2.1",
        "smplx>=0.1.28",
        "roma>=1.4",
        "opencv-python-headless>=4.8",
        "rosbags>=0.10",
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
    ],
    extras_require={
        "test": ["pytest>=7", "mcap>=1.1", "mcap-ros2-support>=0.5", "onnx>=1.15", "onnxruntime>=1.17"],
        "export": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript>=0.1"],
        "viz": ["matplotlib>=3.7", "rosbags-image>=0.9"],
        # Only to rebuild the shipped default body (hmr_node/tools/build_body_model.py).
        "build": ["anny>=0.6"],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "hmr = hmr_node.tools.cli:main",
        ],
    },
)
