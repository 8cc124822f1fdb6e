import pytest

from nasoa.space import ETNAS, RESNET50_DEEP_STEM, Arch, Skip, parse

CANONICAL = [*ETNAS.values(), RESNET50_DEEP_STEM, "6-_16_1-2", "00201-c01a13_32_1-24-1", "10101010101010101-_8_1"]


@pytest.mark.parametrize("text", CANONICAL)
def test_round_trip(text):
    arch = parse(text)
    assert str(arch) == text
    assert parse(str(arch)) == arch
    assert isinstance(arch, Arch)


def test_archid_is_stable_and_distinct():
    a = parse(ETNAS["ET-NAS-D"])
    assert a.archid == parse(ETNAS["ET-NAS-D"]).archid == "28cb9ff57d96e09d"
    assert len({parse(t).archid for t in ETNAS.values()}) == len(ETNAS)


def test_arch_is_immutable():
    arch = parse(ETNAS["ET-NAS-A"])
    with pytest.raises(AttributeError):
        arch.stem_width = 16  # type: ignore[misc]


def test_structure_of_a_block():
    arch = parse("23311-a02c12_64_211-2111-21111111111111111111111-211")
    assert arch.block.ops == (2, 3, 1)
    assert arch.block.widths == (3, 1)
    assert arch.block.skips == (Skip("a", 0, 2), Skip("c", 1, 2))
    assert arch.stem_width == 64
    assert [len(s) for s in arch.macro.stages] == [3, 4, 23, 3]


def test_skip_order_is_stable_by_destination():
    # Skips into the same place keep their written order (it changes the network); others sort by destination.
    assert str(parse("00000-a13a01_32_1")) == "00000-a01a13_32_1"
    assert str(parse("00000-c12a02_32_1")) == "00000-c12a02_32_1"


@pytest.mark.parametrize(
    ("text", "pos", "words"),
    [
        ("071-_64_1-1", 1, "width digit"),
        ("731-_64_1-1", 0, "unknown op digit"),
        ("031-a05_64_1-1", 6, "only places 0-2"),
        ("031-a21_64_1-1", 5, "forward"),
        ("031-_64_1--1", 10, "empty stage"),
        ("031-_64_-11", 8, "empty stage"),
        ("031-_64_11-", 10, "cannot end"),
        ("031-_64_13-1", 9, "'1', '2', '4'"),
        ("031-_64_1x-1", 9, "'1', '2', '4'"),
        ("031-_6a4_1-1", 6, "decimal integer"),
        ("031-_064_1-1", 5, "leading zeros"),
        ("03-_64_1-1", 1, "2n-1 digits"),
        ("031_64_1-1", 3, "'-'"),
        ("031-_64", 7, "two '_'"),
        ("031-x01_64_1", 4, "'a' (add) or 'c'"),
        ("031-a0_64_1", 4, "triples"),
        ("031-a02_64_1", 4, "implicit"),
        ("031-c02_64_1", 6, "concat into the block output"),
        ("031-a01a01_64_1", 7, "duplicate"),
        ("031-_66_1", 5, "multiple of 4"),
        ("-_64_1", 0, "no layers"),
        ("031-_64_", 8, "no blocks"),
    ],
)
def test_malformed_encodings_name_the_problem(text, pos, words):
    with pytest.raises(ValueError) as err:
        parse(text)
    message = str(err.value)
    assert words in message
    assert f"at position {pos}" in message
    assert repr(text) in message


def test_unbuildable_groups_are_rejected():
    with pytest.raises(ValueError, match="multiple of 32"):
        parse("005-_32_1-1")  # layer 2 gets C/4 = 8 channels, too few for 32 channels per group
    with pytest.raises(
        ValueError, match=r"'400-_32_1-1': stage 1 block 1 layer 1 \(op digit at position 0\).*depthwise"
    ):
        parse("400-_32_1-1")  # depthwise 3x3 from C to C/4: output must be a multiple of the input


def test_non_string_is_rejected():
    with pytest.raises(ValueError, match="string"):
        parse(42)  # type: ignore[arg-type]
