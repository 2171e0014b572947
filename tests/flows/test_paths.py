import pytest
import torch

from mfm.flows import PathSample, linear_path


def test_endpoints_and_velocity():
    generator = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(2, 5, 3, generator=generator)
    start = linear_path(x0, x1, torch.zeros(5))
    end = linear_path(x0, x1, torch.ones(5))
    assert isinstance(start, PathSample)
    torch.testing.assert_close(start.x_t, x0)
    torch.testing.assert_close(end.x_t, x1)
    torch.testing.assert_close(start.dx_t, x1 - x0)


def test_per_row_times_and_derivative():
    generator = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(2, 4, 2, generator=generator, dtype=torch.float64)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64)
    path = linear_path(x0, x1, t)
    torch.testing.assert_close(path.x_t, x0 + t[:, None] * (x1 - x0))
    torch.testing.assert_close(path.t, t)
    # dx_t is the time derivative of x_t (central difference, exact for a line)
    h = 1e-3
    slope = (linear_path(x0, x1, t + h).x_t - linear_path(x0, x1, t - h).x_t) / (2 * h)
    torch.testing.assert_close(slope, path.dx_t)


def test_batched_clouds_broadcast_over_points():
    generator = torch.Generator().manual_seed(2)
    x0, x1 = torch.randn(2, 3, 6, 2, generator=generator)
    t = torch.tensor([0.0, 0.5, 1.0])
    path = linear_path(x0, x1, t)
    torch.testing.assert_close(path.x_t[0], x0[0])
    torch.testing.assert_close(path.x_t[1], (x0[1] + x1[1]) / 2)
    torch.testing.assert_close(path.x_t[2], x1[2])


def test_scalar_time():
    x0, x1 = torch.zeros(3, 2), torch.ones(3, 2)
    torch.testing.assert_close(linear_path(x0, x1, 0.3).x_t, torch.full((3, 2), 0.3))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="same shape"):
        linear_path(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="`t`"):
        linear_path(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(4))
