import numpy as np

from denoise_cli.training.guided_filter import guided_filter


def _reference(p, guide, r, eps):
    """He et al.'s algorithm written out with explicit windows (clipped at the borders)."""
    h, w = p.shape
    a = np.zeros_like(p)
    b = np.zeros_like(p)
    for i in range(h):
        for j in range(w):
            win = (slice(max(0, i - r), i + r + 1), slice(max(0, j - r), j + r + 1))
            ii, pp = guide[win], p[win]
            cov = (ii * pp).mean() - ii.mean() * pp.mean()
            a[i, j] = cov / (ii.var() + eps)
            b[i, j] = pp.mean() - a[i, j] * ii.mean()
    q = np.zeros_like(p)
    for i in range(h):
        for j in range(w):
            win = (slice(max(0, i - r), i + r + 1), slice(max(0, j - r), j + r + 1))
            q[i, j] = a[win].mean() * guide[i, j] + b[win].mean()
    return q


def test_matches_reference_implementation():
    rng = np.random.default_rng(0)
    p, guide = rng.random((12, 15)), rng.random((12, 15))
    assert np.allclose(guided_filter(p, guide, 1, 0.01), _reference(p, guide, 1, 0.01), atol=1e-5)


def test_closed_form_cases():
    flat = np.full((8, 8, 3), 0.4)
    assert np.allclose(guided_filter(flat, flat), 0.4, atol=1e-6)  # constants stay
    rng = np.random.default_rng(1)
    x = rng.random((16, 16))
    # ε → 0 with guide = input: the filter is the identity
    assert np.allclose(guided_filter(x, x, 1, 1e-10), x, atol=1e-4)
    # ε → ∞: a → 0, output is the twice box-filtered input, flat stays flat, mean is kept
    assert abs(guided_filter(x, x, 1, 1e6).mean() - x.mean()) < 0.02
