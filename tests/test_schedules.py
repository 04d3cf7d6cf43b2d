"""Learning-rate schedules of method.md."""

import pytest

from clipreid.training.schedules import cosine_with_warmup, warmup_multistep_factor


def test_stage1_warmup_then_cosine():
    lr = lambda e: cosine_with_warmup(e, 3.5e-4, 120, 5, 1e-5, 1e-6)  # noqa: E731
    assert lr(0) == pytest.approx(1e-5)
    assert lr(1) == pytest.approx(1e-5 + (3.5e-4 - 1e-5) / 5)
    assert lr(1) < lr(2) < lr(4)
    assert lr(60) == pytest.approx(1e-6 + 0.5 * (3.5e-4 - 1e-6))  # half way down the cosine
    assert lr(120) == pytest.approx(1e-6)
    assert all(lr(e) > lr(e + 1) for e in range(5, 120))


def test_stage2_warmup_and_milestones():
    f = lambda e: warmup_multistep_factor(e, [30, 50], 0.1, 10, 0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.1 * 0.5 + 0.5)
    assert f(10) == pytest.approx(1.0) and f(29) == pytest.approx(1.0)
    assert f(30) == pytest.approx(0.1) and f(49) == pytest.approx(0.1)
    assert f(50) == pytest.approx(0.01) and f(60) == pytest.approx(0.01)
