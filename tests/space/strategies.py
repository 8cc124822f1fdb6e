"""Hypothesis strategies for valid ET-NAS encodings (small, so that building them is cheap)."""

from hypothesis import assume
from hypothesis import strategies as st

from nasoa.space import Arch, parse


@st.composite
def encodings(draw, max_layers: int = 4, max_stages: int = 3, max_blocks: int = 2, stem_widths=(8, 16, 32)) -> Arch:
    n = draw(st.integers(1, max_layers))
    ops = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    widths = draw(st.lists(st.integers(0, 4), min_size=n - 1, max_size=n - 1))
    layers = "".join(f"{o}{w}" for o, w in zip(ops, widths)) + str(ops[-1])
    skip_pool = [
        f"{k}{s}{d}"
        for d in range(1, n + 1)
        for s in range(d)
        for k in "ac"
        if not (s == 0 and d == n) and not (k == "c" and d == n)
    ]
    skips = draw(st.lists(st.sampled_from(skip_pool), max_size=2, unique=True)) if skip_pool else []
    stem = draw(st.sampled_from(stem_widths))
    stages = draw(
        st.lists(
            st.lists(st.sampled_from("1124"), min_size=1, max_size=max_blocks).map("".join),
            min_size=1,
            max_size=max_stages,
        )
    )
    text = f"{layers}-{''.join(skips)}_{stem}_{'-'.join(stages)}"
    try:
        return parse(text)
    except ValueError:
        assume(False)
        raise
