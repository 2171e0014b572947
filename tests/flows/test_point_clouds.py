import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from mfm.flows.generate import generate_clouds
from mfm.flows.point_clouds import (
    entropic_ot_targets,
    masked_mse,
    sample_noise_clouds,
    wfm_path,
)

SIZES = (5, 9, 12)
D = 3


@pytest.fixture
def padded():
    """Three clouds of 5, 9 and 12 points padded to 12 with NaN, as float64."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(len(SIZES), max(SIZES), D, generator=g, dtype=torch.float64)
    x1 = 2 * torch.randn(len(SIZES), max(SIZES), D, generator=g, dtype=torch.float64) + 1
    mask = torch.arange(max(SIZES))[None, :] < torch.tensor(SIZES)[:, None]
    return (
        x0.masked_fill(~mask[..., None], torch.nan),
        x1.masked_fill(~mask[..., None], torch.nan),
        mask,
    )


def _reference_plan(x0, x1, reg, n_iter=None):
    """Per-cloud ``ot.sinkhorn`` on the valid points, cost scaled by its mean."""
    cost = ot.dist(x0, x1)
    cost = cost / cost.mean()
    a = np.full(len(x0), 1 / len(x0))
    if n_iter is None:
        return ot.sinkhorn(a, a, cost, reg, method="sinkhorn_log", numItermax=10_000, stopThr=1e-12)
    # Transposed problem: POT updates v then u, ot.batch u then v; same iterates this way.
    plan_t = ot.sinkhorn(
        a, a, cost.T, reg, method="sinkhorn_log", numItermax=n_iter, stopThr=0, warn=False
    )
    return plan_t.T


def _greedy(plan):
    plan, match = plan.copy(), np.zeros(len(plan), dtype=int)
    for _ in range(len(plan)):
        i, j = np.unravel_index(np.argmax(plan), plan.shape)
        match[i] = j
        plan[i, :], plan[:, j] = -1, -1
    return match


def _reference_targets(x0, x1, reg, mode, rounding, n_iter=None):
    plan = _reference_plan(x0, x1, reg, n_iter)
    if mode == "barycentric":
        return plan @ x1 / plan.sum(1, keepdims=True)
    match = plan.argmax(1)
    if len(set(match)) < len(match):
        match = (
            _greedy(plan) if rounding == "greedy" else linear_sum_assignment(plan, maximize=True)[1]
        )
    return x1[match]


@pytest.mark.parametrize(
    ("mode", "rounding"),
    [("barycentric", "assignment"), ("matching", "assignment"), ("matching", "greedy")],
)
@pytest.mark.parametrize("n_iter", [None, 30])
def test_targets_equal_per_cloud_sinkhorn(padded, mode, rounding, n_iter):
    x0, x1, mask = padded
    reg = 0.2
    options = {"n_iter": 10_000, "tol": 1e-12} if n_iter is None else {"n_iter": n_iter, "tol": 0.0}
    targets = entropic_ot_targets(x0, x1, mask, reg=reg, mode=mode, rounding=rounding, **options)
    assert torch.isfinite(targets).all()
    for b, n in enumerate(SIZES):
        expected = _reference_targets(
            x0[b, :n].numpy(), x1[b, :n].numpy(), reg, mode, rounding, n_iter
        )
        np.testing.assert_allclose(targets[b, :n].numpy(), expected, atol=1e-7)
        assert (targets[b, n:] == 0).all()


@pytest.mark.parametrize("mode", ["barycentric", "matching"])
def test_padding_equals_unpadded(padded, mode):
    x0, x1, mask = padded
    # Scatter the padding: valid points need not come first.
    order = torch.randperm(mask.shape[1], generator=torch.Generator().manual_seed(1))
    # tol=0: a fixed number of iterations (with tol > 0 the batch stops on its worst cloud).
    options = {"mode": mode, "n_iter": 50, "tol": 0.0}
    targets = entropic_ot_targets(x0[:, order], x1[:, order], mask[:, order], **options)
    for b, n in enumerate(SIZES):
        alone = entropic_ot_targets(x0[b : b + 1, :n], x1[b : b + 1, :n], **options)[0]
        valid = mask[b, order]
        torch.testing.assert_close(targets[b, valid], alone[order[valid]])
        assert (targets[b, ~valid] == 0).all()


@pytest.mark.parametrize("rounding", ["assignment", "greedy"])
def test_tiny_reg_recovers_permutation(rounding):
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(4, 16, 16, generator=g)
    perms = torch.stack([torch.randperm(16, generator=g) for _ in range(4)])
    x1 = torch.gather(x0, 1, perms[..., None].expand_as(x0))
    targets = entropic_ot_targets(x0, x1, reg=1e-3, n_iter=500, rounding=rounding)
    torch.testing.assert_close(targets, x0, rtol=0, atol=0)
    barycentric = entropic_ot_targets(x0, x1, reg=1e-3, n_iter=500, mode="barycentric")
    torch.testing.assert_close(barycentric, x0, rtol=0, atol=1e-4)


def test_matching_is_one_to_one(padded):
    x0, x1, mask = padded
    targets = entropic_ot_targets(x0, x1, mask, reg=0.5, mode="matching")  # large reg: collisions
    for b, n in enumerate(SIZES):
        rows = {tuple(row) for row in targets[b, :n].tolist()}
        assert rows == {tuple(row) for row in x1[b, :n].tolist()}


def test_targets_validate_inputs(padded):
    x0, x1, mask = padded
    with pytest.raises(ValueError, match="mode"):
        entropic_ot_targets(x0, x1, mask, mode="soft")
    with pytest.raises(ValueError, match="reg"):
        entropic_ot_targets(x0, x1, mask, reg=0.0)
    with pytest.raises(ValueError, match="same shape"):
        entropic_ot_targets(x0, x1[:, :5], mask)
    with pytest.raises(ValueError, match="mask"):
        entropic_ot_targets(x0, x1, mask.long())
    empty = mask.clone()
    empty[0] = False
    with pytest.raises(ValueError, match="at least one valid point"):
        entropic_ot_targets(x0, x1, empty)


def test_noise_clouds():
    like = torch.zeros(40, 500, 2)
    mask = torch.ones(40, 500, dtype=torch.bool)
    mask[:, 400:] = False
    z = sample_noise_clouds(like, mask, generator=torch.Generator().manual_seed(3))
    assert (z[:, 400:] == 0).all()
    torch.testing.assert_close(z[:, :400].reshape(-1, 2).mean(0), torch.zeros(2), atol=0.02, rtol=0)
    torch.testing.assert_close(z[:, :400].reshape(-1, 2).T.cov(), torch.eye(2), atol=0.02, rtol=0)
    again = sample_noise_clouds(like, mask, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, again)

    mean, cov = torch.tensor([1.0, -2.0]), torch.tensor([[2.0, 0.6], [0.6, 0.5]])
    z = sample_noise_clouds(
        like, kind="chol_normal", mean=mean, cov=cov, generator=torch.Generator().manual_seed(4)
    )
    torch.testing.assert_close(z.reshape(-1, 2).mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(z.reshape(-1, 2).T.cov(), cov, atol=0.03, rtol=0)
    with pytest.raises(ValueError, match="positive definite"):
        sample_noise_clouds(like, kind="chol_normal", mean=mean, cov=-cov)
    with pytest.raises(ValueError, match="needs `mean`"):
        sample_noise_clouds(like, kind="chol_normal")
    with pytest.raises(ValueError, match="only used"):
        sample_noise_clouds(like, mean=mean)


def test_wfm_path(padded):
    x0, x1, mask = padded
    t = torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64)
    path = wfm_path(x0, x1, mask, t)
    targets = entropic_ot_targets(x0, x1, mask)
    valid = mask[..., None]
    x0_zero = x0.nan_to_num(0.0)
    torch.testing.assert_close(
        path.x_t,
        torch.where(valid, (1 - t[:, None, None]) * x0_zero + t[:, None, None] * targets, 0),
    )
    torch.testing.assert_close(path.dx_t, torch.where(valid, targets - x0_zero, 0))
    torch.testing.assert_close(path.t, t)


def test_masked_mse(padded):
    pred, target, mask = padded
    g = torch.Generator().manual_seed(5)
    full = torch.randn(3, 12, D, generator=g)
    other = torch.randn(3, 12, D, generator=g)
    torch.testing.assert_close(masked_mse(full, other), F.mse_loss(full, other))
    per_cloud = [F.mse_loss(pred[b, :n], target[b, :n]) for b, n in enumerate(SIZES)]
    torch.testing.assert_close(masked_mse(pred, target, mask), torch.stack(per_cloud).mean())


@pytest.mark.parametrize(
    ("method", "factor"), [("euler", lambda h: 1 - h), ("midpoint", lambda h: 1 - h + h**2 / 2)]
)
def test_generate_clouds_linear_field(padded, method, factor):
    x0, _, mask = padded
    calls = []

    def velocity_fn(x, t, cond, mask_):
        calls.append(float(t[0]))
        assert cond == "label" and mask_ is mask
        return -x  # dx/dt = -x: Euler multiplies by (1 - h) per step

    out = generate_clouds(velocity_fn, x0, mask, "label", n_steps=10, method=method)
    expected = torch.where(mask[..., None], x0 * factor(0.1) ** 10, 0)
    torch.testing.assert_close(out, expected)
    assert calls[0] == 0.0 and len(calls) == (10 if method == "euler" else 20)


@pytest.mark.slow
def test_wfm_learns_labelled_niches():
    from mfm.models import SetTransformerVelocity

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0]])

    def niches(labels):
        x = centres[labels][:, None, :] + 0.3 * torch.randn(len(labels), 8, 2, generator=g)
        mask = torch.ones(len(labels), 8, dtype=torch.bool)
        mask[labels == 1, 6:] = False  # label-1 niches have 6 points
        return x, mask

    torch.manual_seed(0)
    model = SetTransformerVelocity(
        2, n_conditions=2, hidden=32, n_layers=2, n_heads=2, cfg_dropout=0.1
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        labels = torch.randint(0, 2, (32,), generator=g)
        x1, mask = niches(labels)
        path = wfm_path(
            sample_noise_clouds(x1, mask, generator=g), x1, mask, torch.rand(32, generator=g)
        )
        loss = masked_mse(model(path.x_t, path.t, labels, mask, generator=g), path.dx_t, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    labels = torch.tensor([0] * 16 + [1] * 16)
    _, mask = niches(labels)
    x0 = sample_noise_clouds(torch.zeros(32, 8, 2), mask, generator=g)
    out = generate_clouds(model, x0, mask, labels, n_steps=50, method="midpoint")
    for label in (0, 1):
        points = out[labels == label][mask[labels == label]]
        torch.testing.assert_close(points.mean(0), centres[label], atol=0.4, rtol=0)
        assert (points.std(0) < 0.6).all()


def test_pooled_gaussian_is_the_shrunk_covariance_of_all_points():
    from mfm.flows import pooled_gaussian

    points = torch.randn(50, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    m, S = pooled_gaussian(points, shrinkage=0.0)
    np.testing.assert_allclose(m.numpy(), points.numpy().mean(0))
    np.testing.assert_allclose(S.numpy(), np.cov(points.numpy().T, bias=True), atol=1e-12)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        pooled_gaussian(points[None])
