"""Random-state helpers shared by every stochastic function."""

import numpy as np
import torch

from mfm._utils import as_torch_generator


def test_numpy_integer_seeds_like_the_python_integer():
    draws = [torch.rand(3, generator=as_torch_generator(seed)) for seed in (3, np.int64(3))]
    torch.testing.assert_close(draws[0], draws[1], rtol=0, atol=0)
    assert torch.equal(
        as_torch_generator(3).get_state(), torch.Generator().manual_seed(3).get_state()
    )


def test_a_numpy_generator_seeds_reproducibly():
    a = torch.rand(3, generator=as_torch_generator(np.random.default_rng(5)))
    b = torch.rand(3, generator=as_torch_generator(np.random.default_rng(5)))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
