import numpy as np
import pytest

from matcher import skills


@pytest.mark.parametrize("written,canonical", [
    ("缝纫工", "缝纫"), ("缝纫", "缝纫"), ("会缝纫", "缝纫"), ("Sewing", "缝纫"), ("ｓｅｗｉｎｇ", "缝纫"),
    ("电焊工", "焊接"), ("电焊", "焊接"), ("氩弧焊工", "焊接"),
    ("叉车司机", "叉车"), ("养老院护工", "养老护理"), ("熟练电工", "电工"), ("剥虾", "水产品加工"),
    ("柳编", "手工编织"), ("电焊技术", "焊接"),
])
def test_surface_forms_meet_their_canonical_skill(written, canonical):
    assert skills.normalise(written) == canonical


def test_unknown_tag_is_kept_cleaned():
    assert skills.normalise("  数控车床 ") == "数控车床"


def test_occupation_aliases_are_merged_from_the_classification():
    # 手缝工 is an alias of 缝纫工 (6-05-01-03) in the national classification.
    assert skills.variant_table()["手缝工"] == "缝纫"


def test_similarity_and_coverage():
    assert skills.similarity("缝纫工", "会缝纫") == 1.0
    assert skills.similarity("缝纫", "焊接") == 0.0
    share, missing = skills.coverage(["缝纫工", "包装"], ["缝纫", "电焊"])
    assert share == 0.5 and missing == ("焊接",)
    assert skills.coverage(["缝纫"], []) == (1.0, ())


def test_skill_index_masks_count_overlap():
    idx = skills.SkillIndex()
    jobs = idx.encode([["缝纫", "包装"], ["电焊"], []])
    workers = idx.encode([["缝纫工", "电焊", "厨师"]], words=jobs.shape[1], grow=False)
    covered = skills.popcount(jobs & workers)
    assert covered.tolist() == [1, 1, 0]
    assert idx.decode(jobs[0]) == ("缝纫", "包装")
    assert "烹饪" not in idx.ids  # grow=False leaves unknown skills out


def test_skill_index_spans_more_than_one_word():
    idx = skills.SkillIndex(f"s{i}" for i in range(100))
    masks = idx.encode([["s3", "s99"]])
    assert masks.shape == (1, 2)
    assert idx.decode(masks[0]) == ("s3", "s99")
    assert skills.popcount(masks).tolist() == [2]
