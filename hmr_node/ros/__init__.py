"""ROS 2 nodes: parameters into configs, messages into arrays, one core call, results into messages."""
