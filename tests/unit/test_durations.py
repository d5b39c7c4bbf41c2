import pytest

from segctl.core.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("7d", 604800),
        ("2w", 1209600),
        ("1.5h", 5400),
        (" 7D ", 604800),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-5m", "5 y", "1e9", "24hours", "3650000d", "nan"])
def test_bad_durations_say_what_is_expected(text):
    with pytest.raises(ValueError, match="duration like|longer than ten years"):
        parse_duration(text)
