"""Plausible synthetic Chinese names for generated worlds (SPEC section 2: ``head_name``, ``name``).

Surnames are drawn by their rough frequency in Shandong; given names are one or two characters
from pools of common characters, by sex. Members of a household mostly share its surname (wives
often keep their own); the head is the oldest man of the household, else its oldest member.
Names come from their own random stream (a child of the world's seed that no other part of the
generator uses), so adding them leaves every other column of a generated world byte-identical.
No phone numbers are made up: a synthetic number could be somebody's real one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The generator's other streams are the seed's first spawned children (keys 0-4); this key is far
# from them, so new streams there never collide with the names'.
NAMES_STREAM = 1_000

# Common surnames, about as often as they are met in Shandong (relative weights).
SURNAMES = {
    "王": 9.0, "李": 8.0, "张": 7.5, "刘": 6.5, "陈": 3.0, "杨": 3.0, "赵": 2.8, "孙": 2.8, "徐": 2.0, "马": 1.8,
    "高": 1.8, "宋": 1.6, "朱": 1.4, "郭": 1.4, "胡": 1.2, "于": 1.5, "丁": 1.2, "董": 1.1, "崔": 1.0, "曹": 0.9,
    "周": 1.0, "吴": 0.9, "许": 0.8, "林": 0.8, "韩": 0.9, "秦": 0.7, "厉": 0.6, "牟": 0.5, "卢": 0.6, "姜": 0.9,
    "袁": 0.5, "郑": 0.6, "冯": 0.6, "田": 0.7, "石": 0.5, "潘": 0.4, "邵": 0.5, "孔": 0.4, "焦": 0.4, "尹": 0.4,
    "魏": 0.5, "侯": 0.5, "薛": 0.4, "庄": 0.5, "安": 0.3, "鲁": 0.3, "范": 0.4, "贾": 0.4, "程": 0.4, "葛": 0.4,
}
FEMALE_GIVEN = tuple("秀英兰芳丽梅玲霞娟红艳敏静燕萍华琴云莉凤桂荣翠玉珍霞慧婷雪洁丹琳春花香")
MALE_GIVEN = tuple("明国建军伟强志海东文平华立刚永勇波峰涛斌成林春德福庆宝山金祥广振兴学忠")
TWO_CHARACTER_SHARE = 0.7


def _given(rng: np.random.Generator, female: np.ndarray) -> np.ndarray:
    n = len(female)
    f, m = np.array(FEMALE_GIVEN, dtype=object), np.array(MALE_GIVEN, dtype=object)
    first = np.where(female, f[rng.integers(0, len(f), n)], m[rng.integers(0, len(m), n)])
    second = np.where(female, f[rng.integers(0, len(f), n)], m[rng.integers(0, len(m), n)])
    two = rng.random(n) < TWO_CHARACTER_SHARE
    return np.where(two & (first != second), first + second, first)


def _surnames(rng: np.random.Generator, n: int) -> np.ndarray:
    names = np.array(list(SURNAMES), dtype=object)
    p = np.array(list(SURNAMES.values()), dtype=float)
    return names[rng.choice(len(names), size=n, p=p / p.sum())]


def synthetic_names(seed: int, n_households: int, member_household: np.ndarray, female: np.ndarray,
                    age: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Names of the heads of ``n_households`` households and of their members.

    ``member_household`` is each member's household row; ``female`` and ``age`` describe the
    members. The same seed gives the same names.
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed) % 2**64, spawn_key=(NAMES_STREAM,)))
    family = _surnames(rng, n_households)
    own = _surnames(rng, len(member_household))
    married_in = female & (rng.random(len(member_household)) < 0.55)
    members = np.where(married_in, own, family[member_household]) + _given(rng, female)
    # The head: the oldest man, else the oldest member; a household without members gets a name of its own.
    heads = family + _given(rng, np.zeros(n_households, dtype=bool))
    if len(member_household):
        order = np.lexsort((-age, female, member_household))
        first = np.unique(member_household[order], return_index=True)
        heads[first[0]] = members[order][first[1]]
    return heads, members


def add_synthetic_names(world, member_household: np.ndarray, seed: int) -> None:
    """Fill ``head_name`` and ``name`` of a generated world in place."""
    w = world.workers
    heads, members = synthetic_names(seed, len(world.households), np.asarray(member_household, dtype=np.int64),
                                     (w["sex"] == "F").to_numpy(), w["age"].to_numpy())
    world.households["head_name"] = pd.Series(heads, index=world.households.index, dtype=object)
    world.households["phone"] = pd.Series([""] * len(world.households), index=world.households.index, dtype=object)
    world.workers["name"] = pd.Series(members, index=w.index, dtype=object)
