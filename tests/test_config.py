from dataclasses import dataclass

import pytest

from nasoa.config import typed_settings


@dataclass(frozen=True)
class S:
    n: int
    x: float = 1.0
    name: str | None = None
    sizes: tuple[int, ...] = (1,)
    flag: bool = False


def test_valid_values_and_list_to_tuple():
    s = typed_settings(S, {"n": 3, "x": 2, "sizes": [4, 5], "flag": True}, "s")
    assert s == S(3, 2, None, (4, 5), True)


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"n": "3"}, "s.n: expected int"),
        ({"n": True}, "s.n: expected int"),
        ({"n": 1, "x": "a"}, "s.x"),
        ({"n": 1, "sizes": [1, "a"]}, "s.sizes"),
        ({"n": 1, "nme": "a"}, "unknown key"),
        ({}, "missing key"),
    ],
)
def test_bad_values_name_the_key(values, words):
    with pytest.raises(ValueError, match=words):
        typed_settings(S, values, "s")
