import pytest

from auth_kappa.config import Config, parse_duration
from auth_kappa.errors import UserError


def test_defaults_point_at_local_stack():
    c = Config.load(env={})
    assert c.kafka == "127.0.0.1:9092"
    assert c.redis_url == "redis://127.0.0.1:6379/0"
    assert c.s3_endpoint == "http://127.0.0.1:8333"
    assert c.s3_bucket == "auth"
    assert (c.window, c.grace, c.partitions) == (60.0, 30.0, 4)


def test_env_then_flags_take_precedence():
    env = {"AUTH_KAFKA": "k:1", "AUTH_WINDOW": "5m", "AUTH_S3_BUCKET": "b", "AUTH_PARTITIONS": "8"}
    c = Config.load(env=env)
    assert (c.kafka, c.window, c.s3_bucket, c.partitions) == ("k:1", 300.0, "b", 8)
    c2 = Config.load(env=env, window="1h", kafka=None)
    assert (c2.window, c2.kafka) == (3600.0, "k:1")


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("1m", 60), ("1.5h", 5400), ("7d", 604800),
                                          ("250ms", 0.25), ("42", 42)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("env", [{"AUTH_WINDOW": "soon"}, {"AUTH_PARTITIONS": "x"},
                                 {"AUTH_WINDOW": "0"}, {"AUTH_GRACE": "-1"}])
def test_bad_values_are_one_line_user_errors(env):
    with pytest.raises(UserError) as err:
        Config.load(env=env)
    assert "\n" not in str(err.value)


def test_unknown_override_is_rejected():
    with pytest.raises(UserError, match="unknown configuration option"):
        Config.load(env={}, windo="1m")
