import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from hmr_node.core.geometry import rotations as rot


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_round_trips(dtype, tol):
    g = torch.Generator().manual_seed(0)
    aa = torch.randn(500, 3, generator=g, dtype=dtype)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(500, 1, generator=g, dtype=dtype) * 3.0  # angles < pi
    R = rot.axis_angle_to_matrix(aa)
    assert torch.allclose(rot.matrix_to_axis_angle(R), aa, atol=tol * 10)
    assert torch.allclose(rot.rot6d_to_matrix(rot.matrix_to_rot6d(R)), R, atol=tol)
    assert torch.allclose(rot.quat_xyzw_to_matrix(rot.matrix_to_quat_xyzw(R)), R, atol=tol)
    assert torch.allclose(rot.rot6d_to_axis_angle(rot.axis_angle_to_rot6d(aa)), aa, atol=tol * 10)
    # independent reference: scipy
    R_ref = Rotation.from_rotvec(aa.double().numpy()).as_matrix()
    assert np.allclose(R.double().numpy(), R_ref, atol=tol * 10)
    q_ref = Rotation.from_rotvec(aa.double().numpy()).as_quat()  # scipy: (x, y, z, w)
    q_ref = np.where(q_ref[:, 3:] < 0, -q_ref, q_ref)
    assert np.allclose(rot.matrix_to_quat_xyzw(R).double().numpy(), q_ref, atol=tol * 10)


def test_6d_layout_pinned_to_columns():
    R = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    six = rot.matrix_to_rot6d(R)
    # first two columns, row-major: (R00, R01, R10, R11, R20, R21)
    assert six.tolist() == [0.0, -1.0, 1.0, 0.0, 0.0, 0.0]
    assert torch.equal(rot.rot6d_to_matrix(six), R)


def test_gram_schmidt_from_unnormalised_6d():
    six = torch.tensor([2.0, 1.0, 0.0, 1.0, 0.0, 0.0])  # columns a1=(2,0,0), a2=(1,1,0)
    R = rot.rot6d_to_matrix(six)
    assert torch.allclose(R, torch.eye(3), atol=1e-6)
    x = torch.randn(100, 6, dtype=torch.float64)
    R = rot.rot6d_to_matrix(x)
    assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(100, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(R), torch.ones(100, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_gradient_at_zero_angle(dtype):
    aa = torch.zeros(4, 3, dtype=dtype, requires_grad=True)
    R = rot.axis_angle_to_matrix(aa)
    (R * torch.arange(9, dtype=dtype).reshape(3, 3)).sum().backward()
    assert torch.isfinite(aa.grad).all()
    # d/d(aa) of R = I + [aa]x at zero: analytic gradient of sum(W * R) is (W21-W12, W02-W20, W10-W01)
    W = torch.arange(9, dtype=dtype).reshape(3, 3)
    expected = torch.stack([W[2, 1] - W[1, 2], W[0, 2] - W[2, 0], W[1, 0] - W[0, 1]])
    assert torch.allclose(aa.grad[0], expected, atol=1e-5)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="rot6d"):
        rot.rot6d_to_matrix(torch.zeros(3, 5))
    with pytest.raises(TypeError, match="axis_angle"):
        rot.axis_angle_to_matrix(np.zeros(3))
