"""Skill tags: a canonical vocabulary, synonyms, normalisation and similarity.

People write skills as they say them: 缝纫工, 会缝纫, 针车, sewing. The vocabulary
below names the skills of Rizhao's rural labour market; each is anchored to an
occupation of the national classification (职业分类大典 2022, shipped in
``data/occupations/csco22.csv``), whose recruitment aliases are merged in as variants,
plus our own synonym table of the surface forms seen in practice. A tag that is not in
the table is matched to the nearest canonical skill by character n-gram similarity,
and kept as it is (cleaned) when nothing is close enough.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

from matcher.config import DATA_DIR


@dataclass(frozen=True)
class Skill:
    name: str                 # canonical tag
    code: str                 # occupation code (职业分类大典 2022)
    variants: tuple[str, ...]  # our own synonyms, Chinese and English


# Canonical skill, occupation code, synonyms people write.
VOCABULARY: tuple[Skill, ...] = (
    Skill("缝纫", "6-05-01-03", ("缝纫工", "会缝纫", "缝纫机", "缝纫机操作", "针车", "车工缝纫", "手缝", "手缝工", "sewing", "sewing machine")),
    Skill("服装加工", "6-05-01-03", ("服装厂", "制衣", "服装制作", "锁边", "钉扣", "garment")),
    Skill("手工编织", "6-07-01-00", ("编织", "手工", "柳编", "草编", "条编", "编筐", "手编", "weaving", "handicraft")),
    Skill("农产品分拣", "6-01-06-00", ("分拣", "挑拣", "选果", "果蔬分拣", "农产品挑选", "sorting")),
    Skill("农产品加工", "6-01-06-00", ("果蔬加工", "果蔬坚果加工工", "花生加工", "剥花生", "地瓜加工", "食品加工", "food processing")),
    Skill("水产品加工", "6-01-05-01", ("水产品加工工", "海产品加工", "海鲜加工", "鱼虾加工", "剥虾", "水产加工", "seafood processing")),
    Skill("茶叶加工", "6-02-06-10", ("茶叶加工工", "炒茶", "制茶", "采茶", "绿茶加工", "tea")),
    Skill("食用菌种植", "5-01-02-03", ("食用菌生产工", "蘑菇种植", "香菇", "菌菇", "mushroom")),
    Skill("蔬菜种植", "5-01-02-01", ("种菜", "大棚", "大棚种植", "蔬菜", "农艺工", "种地", "farming")),
    Skill("果树管理", "5-01-02-01", ("果树修剪", "果园管理", "蓝莓种植", "蓝莓", "樱桃", "orchard")),
    Skill("畜禽养殖", "5-03-01-00", ("养猪", "养鸡", "养牛", "养羊", "畜牧", "禽畜养殖", "livestock")),
    Skill("水产养殖", "2-03-08-01", ("水产养殖技术人员", "养鱼", "海参养殖", "贝类养殖", "aquaculture")),
    Skill("包装", "6-31-05-00", ("包装工", "打包", "装箱", "封箱", "packing")),
    Skill("电子装配", "6-25-04-00", ("电子组装", "插件", "装配工", "流水线", "组装", "assembly")),
    Skill("焊接", "6-18-02-04", ("焊工", "电焊", "电焊工", "氩弧焊", "氩弧焊工", "气焊", "welding", "welder")),
    Skill("电工", "6-31-01-03", ("维修电工", "电工证", "低压电工", "水电工", "electrician")),
    Skill("叉车", "6-30-05-00", ("叉车工", "叉车司机", "开叉车", "forklift")),
    Skill("驾驶", "4-02-02-02", ("司机", "货运司机", "开车", "驾驶员", "驾照", "B2", "C1", "driving", "driver")),
    Skill("保洁", "4-09-08-01", ("保洁员", "清洁工", "清洁", "打扫卫生", "环卫", "cleaning", "cleaner")),
    Skill("绿化", "4-09-10-01", ("绿化工", "园林绿化", "园林绿化工", "苗木", "修剪绿篱", "greening", "gardening")),
    Skill("家政服务", "4-10-01-06", ("家政", "家政服务员", "保姆", "钟点工", "月嫂", "housekeeping")),
    Skill("养老护理", "4-10-01-05", ("养老护理员", "护工", "护理", "照顾老人", "elderly care", "caregiver")),
    Skill("育婴", "4-10-01-03", ("育婴师", "保育员", "带孩子", "保育师", "childcare")),
    Skill("烹饪", "4-03-02-01", ("厨师", "中式烹调师", "做饭", "炒菜", "帮厨", "cooking", "cook")),
    Skill("面点", "4-03-02-02", ("面点师", "中式面点师", "做馒头", "煎饼", "pastry")),
    Skill("保安", "4-07-05-01", ("保安员", "门卫", "看门", "巡逻", "security guard")),
    Skill("仓储", "4-02-06-01", ("仓储管理员", "仓库管理", "仓管", "理货", "理货员", "warehouse")),
    Skill("快递分拣", "4-02-07-08", ("快递员", "快递", "物流分拣", "送快递", "courier")),
    Skill("木工", "6-06-03-02", ("手工木工", "机械木工", "木匠", "carpentry", "carpenter")),
    Skill("砌筑", "6-29-01-01", ("砌筑工", "泥瓦工", "瓦工", "泥水匠", "bricklaying", "mason")),
    Skill("钢筋工", "6-29-01-04", ("绑钢筋", "扎钢筋", "rebar")),
    Skill("电子商务", "4-01-06-01", ("电商", "网店", "淘宝", "直播带货", "网络销售", "e-commerce")),
    Skill("收银", "4-01-02-04", ("收银员", "收款", "cashier")),
    Skill("销售", "4-01-02-03", ("营业员", "导购", "售货员", "商品营业员", "sales")),
    Skill("客服", "4-04-04-02", ("客户服务", "接线员", "电话客服", "customer service")),
    Skill("计算机操作", "4-04-05-01", ("电脑操作", "办公软件", "打字", "office", "computer")),
    Skill("会计", "2-06-03-00", ("会计员", "出纳", "记账", "财务", "accounting")),
    Skill("幼儿教育", "2-08-03-00", ("幼儿园教师", "幼师", "早教", "kindergarten teacher")),
    Skill("中药材种植", "5-01-02-05", ("中药材种植员", "种药材", "丹参", "herb farming")),
    Skill("印刷", "6-08-01-02", ("印刷工", "印刷操作员", "printing")),
)

_FORM_SUFFIXES = ("工人", "人员", "员", "工", "师")
_FORM_PREFIXES = ("会", "懂", "熟悉", "熟练", "擅长", "能")
_MARKER = re.compile(r"[LS]$")          # classification markers (绿色/数字职业) on aliases
_SPACES = re.compile(r"\s+")
SIMILARITY_THRESHOLD = 0.5


def clean(tag: str) -> str:
    """Fold width and case, drop spaces at the ends and classification markers."""
    t = unicodedata.normalize("NFKC", str(tag)).strip().lower()
    t = _SPACES.sub(" ", t)
    return t


def _strip_forms(t: str) -> str:
    for p in _FORM_PREFIXES:
        if t.startswith(p) and len(t) > len(p) + 1:
            t = t[len(p):]
            break
    for s in _FORM_SUFFIXES:
        if t.endswith(s) and len(t) > len(s) + 1:
            t = t[: -len(s)]
            break
    return t


def ngrams(text: str, n: int = 2) -> frozenset[str]:
    """Character n-grams; a text shorter than n is its own gram."""
    text = text.replace(" ", "")
    if len(text) < n:
        return frozenset([text]) if text else frozenset()
    return frozenset(text[i:i + n] for i in range(len(text) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


@lru_cache(maxsize=1)
def _occupation_aliases() -> dict[str, tuple[str, ...]]:
    """Recruitment aliases of each occupation code from the shipped classification."""
    out: dict[str, tuple[str, ...]] = {}
    with open(DATA_DIR / "occupations" / "csco22.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            names = [row["name"], *row["alias"].split(",")]
            out[row["code"]] = tuple(_MARKER.sub("", n.strip()) for n in names if n.strip())
    return out


@lru_cache(maxsize=1)
def variant_table() -> dict[str, str]:
    """Every known surface form (cleaned) -> canonical skill.

    Occupation aliases are merged in only when they are specific (two characters or
    more, and not claimed by another skill's own synonyms), so that a broad alias
    such as 钳工 does not swallow unrelated tags.
    """
    table: dict[str, str] = {}
    for skill in VOCABULARY:
        for form in (skill.name, *skill.variants):
            table.setdefault(clean(form), skill.name)
    aliases = _occupation_aliases()
    for skill in VOCABULARY:
        for form in aliases.get(skill.code, ()):
            f = clean(form)
            if len(f) >= 2 and f not in table:
                table[f] = skill.name
    return table


@lru_cache(maxsize=1)
def _gram_index() -> tuple[tuple[str, ...], tuple[frozenset, ...]]:
    forms = tuple(variant_table())
    return forms, tuple(ngrams(_strip_forms(f)) for f in forms)


@lru_cache(maxsize=65536)
def normalise(tag: str) -> str:
    """The canonical form of one tag.

    Exact synonym first; then the tag without its 会/熟练 prefix or 工/员/师 suffix; then the
    longest known form the tag contains (养老院护工 holds 护工); then the nearest known form by character-bigram Jaccard similarity (at least 0.5); else the
    cleaned tag itself, so that unknown skills still match their own kind.
    """
    t = clean(tag)
    if not t:
        return ""
    table = variant_table()
    if t in table:
        return table[t]
    s = _strip_forms(t)
    if s in table:
        return table[s]
    forms, index = _gram_index()
    inside = [f for f in forms if len(f) >= 2 and f in t]
    if inside:
        return table[max(inside, key=len)]
    grams = ngrams(s)
    best, best_score = None, 0.0
    for form, g in zip(forms, index):
        score = jaccard(grams, g)
        if score > best_score:
            best, best_score = form, score
    if best is not None and best_score >= SIMILARITY_THRESHOLD:
        return table[best]
    return t


def normalise_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Canonical tags, deduplicated, in first-seen order."""
    seen: dict[str, None] = {}
    for tag in tags:
        n = normalise(tag)
        if n:
            seen.setdefault(n, None)
    return tuple(seen)


def similarity(a: str, b: str) -> float:
    """1.0 for the same canonical skill, else character-bigram Jaccard of the canonical forms."""
    na, nb = normalise(a), normalise(b)
    if na == nb:
        return 1.0
    return jaccard(ngrams(na), ngrams(nb))


def coverage(worker_tags: Iterable[str], job_tags: Iterable[str]) -> tuple[float, tuple[str, ...]]:
    """Share of the job's required skills the worker has, and the missing ones (canonical).

    A job that requires nothing is fully covered.
    """
    need = normalise_tags(job_tags)
    if not need:
        return 1.0, ()
    have = set(normalise_tags(worker_tags))
    missing = tuple(s for s in need if s not in have)
    return 1.0 - len(missing) / len(need), missing


class SkillIndex:
    """Canonical skills as bit columns, so coverage over millions of pairs is a popcount.

    ``encode`` turns tag lists into an (n, words) uint64 mask array; a skill unseen so
    far gets the next bit.
    """

    def __init__(self, names: Iterable[str] = ()):
        self.ids: dict[str, int] = {}
        for n in names:
            self.id_of(n)

    def id_of(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.ids)
        return i

    @property
    def names(self) -> list[str]:
        return list(self.ids)

    def encode(self, tag_lists: Iterable[Iterable[str]], words: int | None = None, grow: bool = True) -> np.ndarray:
        """Masks for each tag list; with ``grow=False`` skills outside the index are left out."""
        canon = [normalise_tags(t) for t in tag_lists]
        if grow:
            for tags in canon:
                for t in tags:
                    self.id_of(t)
        words = words or max(1, (len(self.ids) + 63) // 64)
        out = np.zeros((len(canon), words), dtype=np.uint64)
        for row, tags in enumerate(canon):
            for t in tags:
                i = self.ids.get(t)
                if i is not None and i < words * 64:
                    out[row, i // 64] |= np.uint64(1) << np.uint64(i % 64)
        return out

    def mask_of(self, names: Iterable[str], words: int) -> np.ndarray:
        """One mask with the named (canonical) skills set."""
        out = np.zeros(words, dtype=np.uint64)
        for n in names:
            i = self.ids.get(n)
            if i is not None and i < words * 64:
                out[i // 64] |= np.uint64(1) << np.uint64(i % 64)
        return out

    def decode(self, mask: np.ndarray) -> tuple[str, ...]:
        names = self.names
        out = []
        for w, word in enumerate(np.asarray(mask, dtype=np.uint64)):
            word = int(word)
            while word:
                low = word & -word
                out.append(names[w * 64 + low.bit_length() - 1])
                word ^= low
        return tuple(out)


def popcount(masks: np.ndarray) -> np.ndarray:
    """Bits set per row of an (n, words) uint64 mask array."""
    return np.bitwise_count(masks).sum(axis=1).astype(np.int64)
