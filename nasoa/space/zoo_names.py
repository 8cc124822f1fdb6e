"""The twelve published ET-NAS models by name, with the figures the paper reports (ImageNet, 224 px).

Names follow the paper's table (Xu et al., ICCV 2021, Table of ET-NAS models); the authors' public
name-to-encoding mapping swaps E with F and G with H, which the params/MACs below settle.
"""

from __future__ import annotations

ETNAS: dict[str, str] = {
    "ET-NAS-A": "2-_32_2-11-112-1121112",
    "ET-NAS-B": "031-_32_1-1-221-11121",
    "ET-NAS-C": "011-_32_2-211-2-111122",
    "ET-NAS-D": "031-_64_1-1-221-11121",
    "ET-NAS-E": "011-_64_21-211-121-11111121",
    "ET-NAS-F": "10001-_64_4-111-11122-1111111111111112",
    "ET-NAS-G": "211-_64_41-211-121-11111121",
    "ET-NAS-H": "10001-_64_4-111111111-211112111112-11111",
    "ET-NAS-I": "02031-a02_64_111-2111-21111111111111111111111-211",
    "ET-NAS-J": "211-_64_411-2111-21111111111111111111111-211",
    "ET-NAS-K": "02031-a02_64_1121-111111111111111111111111111-21111111211111-1",
    "ET-NAS-L": "23311-a02c12_64_211-2111-21111111111111111111111-211",
}

#: Published (params in millions, MACs in billions, ImageNet top-1 %) per model.
PUBLISHED: dict[str, tuple[float, float, float]] = {
    "ET-NAS-A": (2.6, 0.23, 62.06),
    "ET-NAS-B": (3.9, 0.39, 66.92),
    "ET-NAS-C": (7.1, 0.58, 71.29),
    "ET-NAS-D": (15.2, 1.55, 74.46),
    "ET-NAS-E": (21.4, 2.61, 76.87),
    "ET-NAS-F": (28.4, 2.31, 78.80),
    "ET-NAS-G": (49.3, 5.68, 80.41),
    "ET-NAS-H": (44.0, 5.33, 80.92),
    "ET-NAS-I": (72.4, 13.13, 81.38),
    "ET-NAS-J": (103.0, 18.16, 82.08),
    "ET-NAS-K": (87.3, 27.51, 82.42),
    "ET-NAS-L": (130.4, 23.46, 82.65),
}

#: ResNet-50 with the deep stem, written in the ET-NAS grammar.
RESNET50_DEEP_STEM = "10001-_64_411-2111-211111-211"
