"""The seed-sweep tool's argument parsing (the sweep itself runs lessons: see tests/seed_sweep)."""

import pytest

from tests.seed_sweep import parse_seeds


def test_a_range_is_half_open_like_range():
    assert parse_seeds("3:7") == [3, 4, 5, 6]


def test_a_list_gives_those_seeds():
    assert parse_seeds("1,5, 9") == [1, 5, 9]


@pytest.mark.parametrize("bad", ["", "5:5", "a:b", "1:2:3", "x"])
def test_bad_seed_ranges_name_the_value(bad):
    with pytest.raises(ValueError, match="seeds"):
        parse_seeds(bad)
