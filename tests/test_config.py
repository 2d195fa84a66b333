import pytest

from auth_kappa.config import Config, parse_duration
from auth_kappa.errors import UserError


def test_defaults_point_at_local_stack():
    c = Config.load(env={})
    assert c.kafka == "127.0.0.1:9092"
    assert c.redis_url == "redis://127.0.0.1:6379/0"
    assert c.s3_endpoint == "http://127.0.0.1:8333"
    assert c.s3_bucket == "auth"
    assert (c.windows, c.grace, c.partitions) == ("1m,1h", 30.0, 4)
    assert [w.size for w in c.window_specs()] == [60, 3600]
    assert [w.retention for w in c.window_specs()] == [48 * 3600, 90 * 86400]


def test_env_then_flags_take_precedence():
    env = {"AUTH_KAFKA": "k:1", "AUTH_WINDOWS": "5m", "AUTH_S3_BUCKET": "b", "AUTH_PARTITIONS": "8"}
    c = Config.load(env=env)
    assert (c.kafka, c.s3_bucket, c.partitions) == ("k:1", "b", 8)
    assert [w.size for w in c.window_specs()] == [300]
    c2 = Config.load(env=env, windows="1h", retention="1h=7d", kafka=None)
    assert c2.kafka == "k:1" and [(w.size, w.retention) for w in c2.window_specs()] == [(3600, 604800)]


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("1m", 60), ("1.5h", 5400), ("7d", 604800),
                                          ("250ms", 0.25), ("42", 42)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("env", [{"AUTH_WINDOWS": "soon"}, {"AUTH_PARTITIONS": "x"},
                                 {"AUTH_WINDOWS": "0"}, {"AUTH_GRACE": "-1"},
                                 {"AUTH_RETENTION": "1m"}])
def test_bad_values_are_one_line_user_errors(env):
    with pytest.raises(UserError) as err:
        Config.load(env=env)
    assert "\n" not in str(err.value)


def test_unknown_override_is_rejected():
    with pytest.raises(UserError, match="unknown configuration option"):
        Config.load(env={}, windo="1m")
