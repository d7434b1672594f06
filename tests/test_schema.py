"""The data contract: every broken file is rejected whole, naming file, row and column."""

import pandas as pd
import pytest

import factories as f
from matcher.errors import SchemaError
from matcher.schema import load_world, read_table, write_world


def _world_dir(tmp_path, households=None, workers=None, jobs=None, referrals=None):
    h = households or [f.household(household_id="H1")]
    w = workers or [f.worker("H1", worker_id="W1")]
    j = jobs or [f.job(job_id="J1")]
    r = referrals if referrals is not None else [f.referral("W1", "J1", referral_id="R1")]
    f.write_world_rows(tmp_path / "w", h, w, j, r)
    return tmp_path / "w"


def _error(tmp_path, **tables) -> SchemaError:
    with pytest.raises(SchemaError) as exc:
        load_world(_world_dir(tmp_path, **tables))
    return exc.value


def test_valid_world_loads_with_exact_dtypes(tmp_path):
    world = load_world(_world_dir(tmp_path))
    assert world.workers["age"].dtype == "int64"
    assert str(world.workers["disability_grade"].dtype) == "Int64"
    assert world.workers["home_only"].dtype == bool
    assert world.jobs["posted_on"].dtype == "datetime64[ns]"
    assert world.jobs["monthly_wage"].dtype == "float64"
    assert str(world.referrals["retained_6m"].dtype) == "boolean"
    assert world.workers["skills"].iloc[0] == ()


def test_missing_column_names_the_column(tmp_path):
    d = _world_dir(tmp_path)
    df = pd.read_csv(d / "workers.csv", dtype=str, keep_default_na=False).drop(columns=["sex"])
    df.to_csv(d / "workers.csv", index=False)
    with pytest.raises(SchemaError) as exc:
        load_world(d)
    e = exc.value
    assert (e.file, e.row, e.column) == ("workers.csv", 1, "sex")
    assert "missing column" in str(e)


def test_duplicate_id_names_the_second_row(tmp_path):
    e = _error(tmp_path, households=[f.household(household_id="H1"), f.household(household_id="H1")])
    assert (e.file, e.row, e.column) == ("households.csv", 3, "household_id")
    assert "duplicate id 'H1'" in str(e)


def test_worker_of_unknown_household(tmp_path):
    e = _error(tmp_path, workers=[f.worker("H1", worker_id="W1"), f.worker("H404", worker_id="W2")])
    assert (e.file, e.row, e.column) == ("workers.csv", 3, "household_id")
    assert "unknown household 'H404'" in str(e)


def test_age_not_an_integer(tmp_path):
    e = _error(tmp_path, workers=[f.worker("H1", worker_id="W1", age="thirty")])
    assert (e.file, e.row, e.column) == ("workers.csv", 2, "age")
    assert "expected an integer" in str(e)


def test_fractional_age_is_not_an_integer(tmp_path):
    e = _error(tmp_path, workers=[f.worker("H1", worker_id="W1", age="35.5")])
    assert e.column == "age" and "integer" in str(e)


@pytest.mark.parametrize("table,column,value", [
    ("workers", "disability", "blind"),
    ("workers", "sex", "X"),
    ("workers", "labour_capacity", "half"),
    ("jobs", "kind", "factory"),
    ("jobs", "physical_demand", "extreme"),
    ("jobs", "requires", "sight;smell"),
    ("referrals", "outcome", "maybe"),
])
def test_unknown_enum_value(tmp_path, table, column, value):
    rows = {"workers": [f.worker("H1", worker_id="W1")], "jobs": [f.job(job_id="J1")],
            "referrals": [f.referral("W1", "J1", referral_id="R1")]}
    rows[table][0][column] = value
    e = _error(tmp_path, **rows)
    assert (e.file, e.row, e.column) == (f"{table}.csv", 2, column)
    assert "expected" in str(e)


def test_disabled_worker_without_grade(tmp_path):
    e = _error(tmp_path, workers=[f.worker("H1", worker_id="W1", disability="visual", disability_grade="")])
    assert (e.file, e.row, e.column) == ("workers.csv", 2, "disability_grade")


def test_grade_given_for_no_disability(tmp_path):
    e = _error(tmp_path, workers=[f.worker("H1", worker_id="W1", disability="none", disability_grade="2")])
    assert (e.file, e.row, e.column) == ("workers.csv", 2, "disability_grade")
    assert "'none'" in str(e)


@pytest.mark.parametrize("column,value", [("lat", "91"), ("lon", "-181"), ("lat", "NaN"), ("lon", ""), ("lat", "inf")])
def test_household_coordinates_out_of_range_or_missing(tmp_path, column, value):
    e = _error(tmp_path, households=[f.household(household_id="H1", **{column: value})])
    assert (e.file, e.row, e.column) == ("households.csv", 2, column)


def test_filled_above_slots(tmp_path):
    e = _error(tmp_path, jobs=[f.job(job_id="J1", slots=3, filled=4)])
    assert (e.file, e.row, e.column) == ("jobs.csv", 2, "filled")
    assert "exceeds slots" in str(e)


def test_min_age_above_max_age(tmp_path):
    e = _error(tmp_path, jobs=[f.job(job_id="J1", min_age=50, max_age=40)])
    assert (e.file, e.row, e.column) == ("jobs.csv", 2, "min_age")


@pytest.mark.parametrize("value", ["2026-13-01", "2026/01/05", "yesterday", "1500-01-01", "9999-12-31"])
def test_bad_date(tmp_path, value):
    e = _error(tmp_path, jobs=[f.job(job_id="J1", posted_on=value)])
    assert (e.file, e.row, e.column) == ("jobs.csv", 2, "posted_on")
    assert "YYYY-MM-DD" in str(e)


def test_referral_to_unknown_worker(tmp_path):
    e = _error(tmp_path, referrals=[f.referral("W9", "J1", referral_id="R1")])
    assert (e.file, e.row, e.column) == ("referrals.csv", 2, "worker_id")


def test_referral_to_unknown_job(tmp_path):
    e = _error(tmp_path, referrals=[f.referral("W1", "J1", referral_id="R1"), f.referral("W1", "J9", referral_id="R2")])
    assert (e.file, e.row, e.column) == ("referrals.csv", 3, "job_id")


def test_non_utf8_file(tmp_path):
    d = _world_dir(tmp_path)
    text = (d / "jobs.csv").read_text(encoding="utf-8")
    (d / "jobs.csv").write_bytes(text.encode("gbk"))
    with pytest.raises(SchemaError) as exc:
        load_world(d)
    assert exc.value.file == "jobs.csv" and "not UTF-8" in str(exc.value)
    assert exc.value.row == 2  # the first non-ASCII byte is on the first data row


def test_control_character_in_text_is_refused(tmp_path):
    e = _error(tmp_path, jobs=[f.job(job_id="J1", title="缝纫\x07工")])
    assert e.column == "title" and "control character" in str(e)


def test_unknown_extra_columns_are_ignored(tmp_path):
    d = _world_dir(tmp_path)
    df = pd.read_csv(d / "households.csv", dtype=str, keep_default_na=False)
    df["coord_source"] = "approximate"
    df.to_csv(d / "households.csv", index=False)
    assert list(load_world(d).households.columns)[:2] == ["household_id", "county_code"]


def test_out_of_county_job_may_have_no_location_but_others_must(tmp_path):
    ok = f.job(job_id="J1", kind="out_of_county", lat="", lon="", county_code="", town_code="", village_code="")
    assert load_world(_world_dir(tmp_path, jobs=[ok])).jobs["lat"].isna().all()
    e = _error(tmp_path, jobs=[f.job(job_id="J1", kind="enterprise", lat="", lon="")])
    assert e.column == "lat" and "only out_of_county" in str(e)


def test_write_then_load_round_trips(tmp_path):
    w1 = load_world(_world_dir(tmp_path))
    write_world(w1, tmp_path / "again")
    w2 = load_world(tmp_path / "again")
    for name, df in w1.tables().items():
        pd.testing.assert_frame_equal(df, w2.tables()[name])


def test_chinese_text_round_trips_unchanged():
    df = read_table("jobs", "job_id,employer,title,kind,lat,lon,county_code,town_code,village_code,skills,min_age,"
                    "max_age,physical_demand,requires,slots,filled,monthly_wage,posted_on,status\n"
                    "J1,莒县柳编扶贫车间,柳编工（居家）,workshop_home,35.58,118.83,371122,371122001,,柳编;草编,"
                    "18,65,light,,10,0,2200,2026-01-05,open\n")
    assert df.at[0, "employer"] == "莒县柳编扶贫车间"
    assert df.at[0, "skills"] == ("柳编", "草编")


def test_coordinates_round_trip_with_every_digit(tmp_path):
    h = f.household(household_id="H1", lat="35.1234567", lon="119.26543219")
    d = _world_dir(tmp_path, households=[h])
    world = load_world(d)
    write_world(world, tmp_path / "again")
    again = load_world(tmp_path / "again")
    assert again.households.at[0, "lat"] == 35.1234567 and again.households.at[0, "lon"] == 119.26543219


# -- names and phones: optional personal columns (SPEC section 2) -----------------------------------

def test_files_without_name_columns_load_with_empty_names(tmp_path):
    d = _world_dir(tmp_path)
    for name, cols in (("households", ["head_name", "phone"]), ("workers", ["name"])):
        df = pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False).drop(columns=cols)
        df.to_csv(d / f"{name}.csv", index=False)
    world = load_world(d)
    assert list(world.households["head_name"]) == [""] and list(world.households["phone"]) == [""]
    assert list(world.workers["name"]) == [""]
    write_world(world, tmp_path / "again")       # and they are written back without them
    assert "head_name" not in (tmp_path / "again" / "households.csv").read_text().splitlines()[0]


def test_names_and_phones_load_and_round_trip(tmp_path):
    d = _world_dir(tmp_path, households=[f.household(household_id="H1", head_name="王建国", phone="13800001111")],
                   workers=[f.worker("H1", worker_id="W1", name="刘桂兰")])
    world = load_world(d)
    assert (world.households["head_name"].iloc[0], world.households["phone"].iloc[0]) == ("王建国", "13800001111")
    assert world.workers["name"].iloc[0] == "刘桂兰"
    write_world(world, tmp_path / "again")
    assert load_world(tmp_path / "again").workers["name"].iloc[0] == "刘桂兰"
    write_world(world, tmp_path / "pseudo", personal=False)
    assert "王建国" not in (tmp_path / "pseudo" / "households.csv").read_text(encoding="utf-8")
    assert "刘桂兰" not in (tmp_path / "pseudo" / "workers.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("phone", ["13800001111", "+8613800001111", "+86 13912345678", "0633-8221234",
                                   "06338221234", "010-12345678"])
def test_plausible_chinese_phone_numbers_are_accepted(tmp_path, phone):
    d = _world_dir(tmp_path, households=[f.household(household_id="H1", phone=phone)])
    assert load_world(d).households["phone"].iloc[0] == phone


@pytest.mark.parametrize("phone", ["12345", "1380000111", "138000011112", "23800001111", "+1 555 0100",
                                   "电话13800001111", "633-8221234"])
def test_implausible_phone_numbers_are_refused_without_repeating_them(tmp_path, phone):
    e = _error(tmp_path, households=[f.household(household_id="H1", phone=phone)])
    assert (e.file, e.row, e.column) == ("households.csv", 2, "phone")
    assert "Chinese phone number" in str(e) and phone not in str(e)


@pytest.mark.parametrize("name,why", [("王" * 51, "longer than 50"), ("王\x07明", "control character")])
def test_names_are_bounded_and_refuse_control_characters(tmp_path, name, why):
    e = _error(tmp_path, workers=[f.worker("H1", worker_id="W1", name=name)])
    assert (e.file, e.column) == ("workers.csv", "name") and why in str(e)
