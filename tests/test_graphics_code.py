import pytest

from keras_dcign import GraphicsCode

pytestmark = pytest.mark.backend_independent


def test_paper_code_layout():
    code = GraphicsCode.paper()
    assert code.names == ("azimuth", "elevation", "light", "intrinsic")
    assert code.sizes == (1, 1, 1, 197)
    assert code.size == 200
    assert code.slice("azimuth") == slice(0, 1)
    assert code.slice("light") == slice(2, 3)
    assert code.slice("intrinsic") == slice(3, 200)
    assert code.index("elevation") == 1
    assert code.name(3) == "intrinsic"
    assert code.group_of_unit()[:4] == [0, 1, 2, 3]
    assert len(code.group_of_unit()) == 200


def test_config_round_trip():
    code = GraphicsCode({"pose": 2, "light": 3, "shape": 10})
    again = GraphicsCode.from_config(code.get_config())
    assert again == code
    assert again.slice("shape") == slice(5, 15)


@pytest.mark.parametrize(
    "groups, match",
    [
        ([], "at least one"),
        ([("a", 1), ("a", 2)], "appears twice"),
        ([("a", 0)], "positive integer"),
        ([("not valid", 1)], "identifier"),
    ],
)
def test_bad_groups(groups, match):
    with pytest.raises(ValueError, match=match):
        GraphicsCode(groups)


def test_unknown_group_is_named():
    code = GraphicsCode.paper()
    with pytest.raises(ValueError, match="'hair'"):
        code.index("hair")
    with pytest.raises(ValueError, match="out of range"):
        code.index(7)
