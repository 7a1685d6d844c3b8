"""The failed-login token bucket."""

from registry.auth.ratelimit import LoginLimiter


def test_burst_then_refill() -> None:
    limiter = LoginLimiter(burst=3, per_minute=6)  # one token every 10 s
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4", now=100.0) is None
        limiter.failed("1.2.3.4", now=100.0)
    assert limiter.retry_after("1.2.3.4", now=100.0) == 10
    assert limiter.retry_after("1.2.3.4", now=104.0) == 6
    assert limiter.retry_after("5.6.7.8", now=100.0) is None  # per client address
    assert limiter.retry_after("1.2.3.4", now=110.0) is None
    limiter.failed("1.2.3.4", now=110.0)
    assert limiter.retry_after("1.2.3.4", now=110.0) == 10
    assert limiter.retry_after("1.2.3.4", now=1000.0) is None  # full again, capped at burst
    for _ in range(3):
        limiter.failed("1.2.3.4", now=1000.0)
    assert limiter.retry_after("1.2.3.4", now=1000.0) == 10


def test_no_refill_means_locked_out() -> None:
    limiter = LoginLimiter(burst=1, per_minute=0)
    limiter.failed("a", now=0.0)
    assert limiter.retry_after("a", now=1e6) == 3600
