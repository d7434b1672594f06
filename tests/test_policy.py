import pytest

from matcher.errors import PolicyError
from matcher.policy import load_policy
from matcher.config import DEFAULT_POLICY


def test_shipped_policy_holds_the_spec_floor():
    p = load_policy()
    assert p.subsidy.workshop_factory == 1000 and p.subsidy.workshop_home == 1000
    assert (p.fallback.women_min_age, p.fallback.men_min_age) == (40, 50)
    for kind, function in (("visual", "sight"), ("hearing", "hearing"), ("speech", "speech")):
        for grade in (1, 2):
            assert function in p.disability_rule(kind, grade).loses
    for grade in (1, 2):
        assert p.disability_rule("physical", grade).max_demand != "heavy"
    assert p.capacity.partial_max_demand != "heavy"


def _write(tmp_path, text):
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_wrong_number_is_named(tmp_path):
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("default_max_km = 15.0", "default_max_km = -3")
    with pytest.raises(PolicyError) as exc:
        load_policy(_write(tmp_path, text))
    assert "commute.default_max_km" in str(exc.value)


def test_a_missing_section_is_named(tmp_path):
    text = DEFAULT_POLICY.read_text(encoding="utf-8").replace("[subsidy]", "[subsidies]")
    with pytest.raises(PolicyError) as exc:
        load_policy(_write(tmp_path, text))
    assert "subsid" in str(exc.value)


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(_write(tmp_path, "[commute\n"))
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")


def test_duplicate_disability_rule_is_refused(tmp_path):
    text = DEFAULT_POLICY.read_text(encoding="utf-8") + (
        '\n[[disability]]\ntype = "visual"\ngrades = [1]\nloses = []\nmax_demand = "heavy"\n')
    # appended after [model], so it still parses as an array-of-tables entry
    with pytest.raises(PolicyError, match="listed twice"):
        load_policy(_write(tmp_path, text))
