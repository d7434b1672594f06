"""The data contract of SPEC section 2: column names, enums, CSV loading and validation.

A world is a folder with four CSV files. Loading turns them into pandas frames with
exact dtypes; anything that breaks the contract raises :class:`SchemaError` naming the
file, the 1-based row as a spreadsheet shows it (the header is row 1) and the column.
Nothing is returned unless the whole world is valid.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from matcher.errors import BIDI_CONTROLS, SchemaError

SEXES = ("F", "M")
DISABILITIES = ("none", "visual", "hearing", "speech", "physical", "intellectual", "mental", "multiple")
CAPACITIES = ("full", "partial", "none")
WANTS = ("job", "business", "none")
EDUCATION = ("none", "primary", "junior", "senior", "vocational", "college")
JOB_KINDS = ("workshop_factory", "workshop_home", "enterprise", "out_of_county", "public_welfare")
DEMANDS = ("light", "medium", "heavy")
FUNCTIONS = ("sight", "hearing", "speech", "literacy")
STATUSES = ("open", "closed")
OUTCOMES = ("hired", "declined", "rejected", "no_show")
WORKSHOP_KINDS = ("workshop_factory", "workshop_home")
DATE_MIN_YEAR, DATE_MAX_YEAR = 1900, 2200    # dates are stored as datetime64[ns]


@dataclass(frozen=True)
class Column:
    """One column of a data file.

    kind is one of: ``str``, ``code`` (digits of a fixed length), ``int``, ``float``,
    ``bool``, ``enum``, ``list`` (``;``-separated tags), ``date``.
    """

    name: str
    kind: str = "str"
    required: bool = True
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    digits: int | None = None
    max_len: int = 200
    pattern: str | None = None     # ``str`` columns: what a non-empty value must look like
    what: str = ""                 # the pattern in words, for the error message
    may_be_absent: bool = False    # a file without this column is read as if it were empty


def _c(name, kind="str", **kw) -> Column:
    return Column(name, kind, **kw)


# Personal data (SPEC section 2): optional, shown only to the volunteer in scope and to admins.
NAME_MAX = 50
# A mainland mobile number (11 digits from 13-19, optionally after +86) or a landline with its area code.
PHONE = r"(?:\+?86[- ]?)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}"
PERSONAL = {"households": ("head_name", "phone"), "workers": ("name",)}


def _name(name: str) -> Column:
    return _c(name, required=False, max_len=NAME_MAX, may_be_absent=True)


TABLES: dict[str, tuple[Column, ...]] = {
    "households": (
        _c("household_id", max_len=64),
        _c("county_code", "code", digits=6),
        _c("town_code", "code", digits=9),
        _c("village_code", "code", digits=12, required=False),
        _c("lat", "float", lo=-90, hi=90),
        _c("lon", "float", lo=-180, hi=180),
        _name("head_name"),
        _c("phone", required=False, max_len=20, pattern=PHONE, may_be_absent=True,
           what="a Chinese phone number (a mobile 1XXXXXXXXXX, or 0AREA-NUMBER)"),
    ),
    "workers": (
        _c("worker_id", max_len=64),
        _c("household_id", max_len=64),
        _c("age", "int", lo=0, hi=120),
        _c("sex", "enum", choices=SEXES),
        _c("disability", "enum", choices=DISABILITIES),
        _c("disability_grade", "int", required=False, lo=1, hi=4),
        _c("labour_capacity", "enum", choices=CAPACITIES),
        _c("wants", "enum", choices=WANTS),
        _c("skills", "list", required=False, max_len=1000),
        _c("education", "enum", choices=EDUCATION),
        _c("max_commute_km", "float", required=False, lo=0, hi=20000),
        _c("home_only", "bool"),
        _c("will_migrate", "bool"),
        _c("graduate", "bool"),
        _c("employed", "bool"),
        _name("name"),
    ),
    "jobs": (
        _c("job_id", max_len=64),
        _c("employer", max_len=200),
        _c("title", max_len=200),
        _c("kind", "enum", choices=JOB_KINDS),
        _c("lat", "float", required=False, lo=-90, hi=90),
        _c("lon", "float", required=False, lo=-180, hi=180),
        _c("county_code", "code", digits=6, required=False),
        _c("town_code", "code", digits=9, required=False),
        _c("village_code", "code", digits=12, required=False),
        _c("skills", "list", required=False, max_len=1000),
        _c("min_age", "int", lo=0, hi=120),
        _c("max_age", "int", lo=0, hi=120),
        _c("physical_demand", "enum", choices=DEMANDS),
        _c("requires", "list", required=False, choices=FUNCTIONS),
        _c("slots", "int", lo=1, hi=1_000_000),
        _c("filled", "int", lo=0, hi=1_000_000),
        _c("monthly_wage", "float", lo=0, hi=1_000_000),
        _c("posted_on", "date"),
        _c("status", "enum", choices=STATUSES),
    ),
    "referrals": (
        _c("referral_id", max_len=64),
        _c("worker_id", max_len=64),
        _c("job_id", max_len=64),
        _c("referred_on", "date"),
        _c("outcome", "enum", choices=OUTCOMES),
        _c("retained_6m", "bool", required=False),
    ),
}
ID_COLUMN = {"households": "household_id", "workers": "worker_id", "jobs": "job_id", "referrals": "referral_id"}
FILES = {name: f"{name}.csv" for name in TABLES}
COLUMNS = {name: [c.name for c in cols] for name, cols in TABLES.items()}


def _fail(file, idx, column, message):
    raise SchemaError(message, file=file, row=int(idx) + 2 if idx is not None else None, column=column)


# Control characters (tab and line breaks aside) and the bidirectional overrides and isolates (U+202E...)
# that make text display in another order than it is stored.
_CONTROL = ({chr(i) for i in range(32)} - {"\t", "\n", "\r"} | {"\x7f"}
            | {chr(c) for c in BIDI_CONTROLS})


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _parse_column(col: Column, s: pd.Series, file: str) -> pd.Series:
    """Turn one column of raw strings into its typed series, or raise at the first bad cell."""
    s = s.str.strip()
    empty = (s == "").to_numpy()
    if col.required:
        i = _first(empty)
        if i is not None:
            _fail(file, i, col.name, "is empty; a value is required")
    too_long = (s.str.len() > col.max_len).to_numpy()
    i = _first(too_long)
    if i is not None:
        _fail(file, i, col.name, f"is longer than {col.max_len} characters")
    ctrl = s.map(lambda v: any(ch in _CONTROL for ch in v)).to_numpy() if len(s) else np.zeros(0, bool)
    i = _first(ctrl)
    if i is not None:
        _fail(file, i, col.name, "contains a control character or a bidirectional override")

    if col.kind == "str":
        if col.pattern is not None:
            ok = empty | s.str.fullmatch(col.pattern).fillna(False).to_numpy()
            i = _first(~ok)
            if i is not None:
                # The value is not repeated: it is personal data, and error messages reach logs.
                _fail(file, i, col.name, f"expected {col.what or col.pattern}")
        return s.astype(object)
    if col.kind == "code":
        ok = empty | (s.str.fullmatch(rf"\d{{{col.digits}}}").fillna(False).to_numpy())
        i = _first(~ok)
        if i is not None:
            _fail(file, i, col.name, f"expected a {col.digits}-digit code, got {s.iloc[i]!r}")
        return s.astype(object)
    if col.kind == "enum":
        ok = empty | s.isin(col.choices).to_numpy()
        i = _first(~ok)
        if i is not None:
            _fail(file, i, col.name, f"expected one of {', '.join(col.choices)}, got {s.iloc[i]!r}")
        return s.astype(object)
    if col.kind == "bool":
        low = s.str.lower()
        ok = empty | low.isin(("true", "false")).to_numpy()
        i = _first(~ok)
        if i is not None:
            _fail(file, i, col.name, f"expected true or false, got {s.iloc[i]!r}")
        if col.required:
            return (low == "true").astype(bool)
        out = pd.array([None if e else v == "true" for e, v in zip(empty, low)], dtype="boolean")
        return pd.Series(out, index=s.index)
    if col.kind == "list":
        parts = s.map(lambda v: tuple(t.strip() for t in v.split(";") if t.strip()))
        if col.choices:
            bad = parts.map(lambda t: next((x for x in t if x not in col.choices), None))
            i = _first(bad.notna().to_numpy())
            if i is not None:
                _fail(file, i, col.name, f"expected tags from {', '.join(col.choices)}, got {bad.iloc[i]!r}")
        return parts.astype(object)
    if col.kind == "date":
        shaped = s.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False).to_numpy()
        i = _first(~empty & ~shaped)
        if i is not None:
            _fail(file, i, col.name, f"expected a date YYYY-MM-DD, got {s.iloc[i]!r}")
        year = pd.to_numeric(s.str[:4].where(shaped, None), errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            i = _first(shaped & ((year < DATE_MIN_YEAR) | (year > DATE_MAX_YEAR)))
        if i is not None:
            _fail(file, i, col.name, f"expected a date YYYY-MM-DD between {DATE_MIN_YEAR} and {DATE_MAX_YEAR}, got {s.iloc[i]!r}")
        d = pd.to_datetime(s.where(~empty, None), format="%Y-%m-%d", errors="coerce")
        bad = (~empty) & d.isna().to_numpy()
        i = _first(bad)
        if i is not None:
            _fail(file, i, col.name, f"expected a date YYYY-MM-DD, got {s.iloc[i]!r}")
        return d.astype("datetime64[ns]")
    if col.kind in ("int", "float"):
        num = pd.to_numeric(s.where(~empty, None), errors="coerce")
        bad = (~empty) & num.isna().to_numpy()
        i = _first(bad)
        if i is not None:
            what = "an integer" if col.kind == "int" else "a number"
            _fail(file, i, col.name, f"expected {what}, got {s.iloc[i]!r}")
        vals = num.to_numpy(dtype=float)
        finite = np.isfinite(vals) | empty
        i = _first(~finite)
        if i is not None:
            _fail(file, i, col.name, f"expected a finite number, got {s.iloc[i]!r}")
        if col.kind == "int":
            frac = (~empty) & (np.nan_to_num(vals) != np.round(np.nan_to_num(vals)))
            i = _first(frac)
            if i is not None:
                _fail(file, i, col.name, f"expected an integer, got {s.iloc[i]!r}")
        with np.errstate(invalid="ignore"):
            out_lo = (~empty) & (vals < col.lo) if col.lo is not None else np.zeros(len(s), bool)
            out_hi = (~empty) & (vals > col.hi) if col.hi is not None else np.zeros(len(s), bool)
        i = _first(out_lo | out_hi)
        if i is not None:
            _fail(file, i, col.name, f"expected a value in [{_num(col.lo)}, {_num(col.hi)}], got {s.iloc[i]!r}")
        if col.kind == "float":
            return pd.Series(vals, index=s.index, dtype="float64")
        if col.required:
            return pd.Series(vals.astype(np.int64), index=s.index, dtype="int64")
        return pd.Series(pd.array([None if e else int(v) for e, v in zip(empty, vals)], dtype="Int64"),
                         index=s.index)
    raise AssertionError(f"unknown column kind {col.kind}")


def _num(x):
    if x is None:
        return "any"
    return str(int(x)) if float(x).is_integer() else str(x)


def parse_table(name: str, raw: pd.DataFrame, file: str | None = None) -> pd.DataFrame:
    """Validate one table of raw strings (as read from CSV) and return it typed.

    Row-level rules (types, ranges, enums, per-row consistency) are checked here;
    rules across tables are checked by :func:`check_world`.
    """
    file = file or FILES[name]
    cols = TABLES[name]
    missing = [c.name for c in cols if c.name not in raw.columns and not c.may_be_absent]
    if missing:
        expected = [c.name for c in cols if not c.may_be_absent]
        raise SchemaError(f"missing column(s) {', '.join(missing)}; expected {', '.join(expected)}",
                          file=file, row=1, column=missing[0])
    raw = raw.reset_index(drop=True)
    absent = [c.name for c in cols if c.name not in raw.columns]
    if absent:
        raw = raw.assign(**{c: "" for c in absent})
    out = pd.DataFrame({c.name: _parse_column(c, raw[c.name].astype(str), file) for c in cols})
    ids = out[ID_COLUMN[name]]
    dup = ids.duplicated().to_numpy()
    i = _first(dup)
    if i is not None:
        _fail(file, i, ID_COLUMN[name], f"duplicate id {ids.iloc[i]!r}")
    _ROW_RULES[name](out, file)
    return out


def _places_rules(df: pd.DataFrame, file: str, located: np.ndarray) -> None:
    """Codes from the shipped Rizhao divisions, and points within the city's bounds (where ``located``)."""
    from matcher import divisions
    known = divisions.place_codes()
    for column, level in (("county_code", "county"), ("town_code", "town"), ("village_code", "village")):
        s = df[column]
        i = _first(((s != "") & ~s.isin(known[level])).to_numpy() & located)
        if i is not None:
            _fail(file, i, column, f"{level} {s.iloc[i]} is not one of Rizhao's {level} codes (the shipped divisions)")
    outside = located & df["lat"].notna().to_numpy() & ~divisions.in_city(df["lat"], df["lon"])
    i = _first(outside)
    if i is not None:
        lo, la = divisions.CITY_LON, divisions.CITY_LAT
        _fail(file, i, "lat" if not la[0] <= df["lat"].iloc[i] <= la[1] else "lon",
              f"({df['lat'].iloc[i]}, {df['lon'].iloc[i]}) lies outside Rizhao (lat {la[0]}-{la[1]}, "
              f"lon {lo[0]}-{lo[1]})")


def _households_rules(df: pd.DataFrame, file: str) -> None:
    _places_rules(df, file, np.ones(len(df), dtype=bool))
    bad = ~np.fromiter((t.startswith(c) for t, c in zip(df["town_code"], df["county_code"])), bool, len(df))
    i = _first(bad)
    if i is not None:
        _fail(file, i, "town_code", f"town {df['town_code'].iloc[i]} is not in county {df['county_code'].iloc[i]}")
    vc = df["village_code"]
    bad = (vc != "").to_numpy() & ~np.fromiter((v.startswith(t) for v, t in zip(vc, df["town_code"])), bool, len(df))
    i = _first(bad)
    if i is not None:
        _fail(file, i, "village_code", f"village {vc.iloc[i]} is not in town {df['town_code'].iloc[i]}")


def _workers_rules(df: pd.DataFrame, file: str) -> None:
    disabled = (df["disability"] != "none").to_numpy()
    has_grade = df["disability_grade"].notna().to_numpy()
    i = _first(disabled & ~has_grade)
    if i is not None:
        _fail(file, i, "disability_grade", f"is empty for a worker with disability {df['disability'].iloc[i]!r}; expected 1-4")
    i = _first(~disabled & has_grade)
    if i is not None:
        _fail(file, i, "disability_grade", "is given for a worker with disability 'none'; expected empty")


def _jobs_rules(df: pd.DataFrame, file: str) -> None:
    i = _first((df["filled"] > df["slots"]).to_numpy())
    if i is not None:
        _fail(file, i, "filled", f"filled {df['filled'].iloc[i]} exceeds slots {df['slots'].iloc[i]}")
    i = _first((df["min_age"] > df["max_age"]).to_numpy())
    if i is not None:
        _fail(file, i, "min_age", f"min_age {df['min_age'].iloc[i]} exceeds max_age {df['max_age'].iloc[i]}")
    no_loc = (df["lat"].isna() | df["lon"].isna()).to_numpy()
    half = (df["lat"].isna() ^ df["lon"].isna()).to_numpy()
    i = _first(half)
    if i is not None:
        _fail(file, i, "lon" if df["lon"].isna().iloc[i] else "lat", "lat and lon must be given together")
    i = _first(no_loc & (df["kind"] != "out_of_county").to_numpy())
    if i is not None:
        _fail(file, i, "lat", f"is empty; only out_of_county jobs may have no location (kind {df['kind'].iloc[i]!r})")
    # an out-of-county job lies outside the county, often outside the city: its place is not checked
    _places_rules(df, file, (df["kind"] != "out_of_county").to_numpy())
    for code, parent, what in (("town_code", "county_code", "county"), ("village_code", "town_code", "town")):
        bad = ((df[code] != "") & (df[parent] != "")).to_numpy() & ~np.fromiter(
            (c.startswith(p) for c, p in zip(df[code], df[parent])), bool, len(df))
        i = _first(bad)
        if i is not None:
            _fail(file, i, code, f"{code.split('_')[0]} {df[code].iloc[i]} is not in {what} {df[parent].iloc[i]}")
    pw = (df["kind"] == "public_welfare").to_numpy()
    i = _first(pw & (df["town_code"] == "").to_numpy())
    if i is not None:
        _fail(file, i, "town_code", "a public_welfare post needs the town (and village) it serves")


def _referrals_rules(df: pd.DataFrame, file: str) -> None:
    hired = (df["outcome"] == "hired").to_numpy()
    i = _first(~hired & df["retained_6m"].notna().to_numpy())
    if i is not None:
        _fail(file, i, "retained_6m", f"is given for outcome {df['outcome'].iloc[i]!r}; only hires are retained")


_ROW_RULES = {"households": _households_rules, "workers": _workers_rules, "jobs": _jobs_rules,
              "referrals": _referrals_rules}


def read_table(name: str, source, file: str | None = None) -> pd.DataFrame:
    """Read one CSV (a path, bytes or text) and validate it with :func:`parse_table`."""
    if isinstance(source, (str, Path)) and not (isinstance(source, str) and "\n" in source):
        path = Path(source)
        file = file or path.name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SchemaError("file is missing", file=file) from None
    else:
        file = file or FILES[name]
        data = source.encode("utf-8") if isinstance(source, str) else bytes(source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SchemaError(f"is not UTF-8 (byte {exc.start} is invalid)", file=file, row=line) from None
    if not text.strip():
        raise SchemaError("is empty; expected a header row", file=file, row=1)
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                          skipinitialspace=False)
    except pd.errors.ParserError as exc:
        raise SchemaError(f"is not valid CSV: {exc}", file=file) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    return parse_table(name, raw, file)


@dataclass
class World:
    """The four validated tables of a world."""

    households: pd.DataFrame
    workers: pd.DataFrame
    jobs: pd.DataFrame
    referrals: pd.DataFrame = field(default_factory=lambda: empty_table("referrals"))

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"households": self.households, "workers": self.workers, "jobs": self.jobs,
                "referrals": self.referrals}


def empty_table(name: str) -> pd.DataFrame:
    raw = pd.DataFrame({c: pd.Series([], dtype=str) for c in COLUMNS[name]})
    return parse_table(name, raw)


def check_references(child: pd.DataFrame, column: str, parent_ids: Iterable[str], file: str, what: str) -> None:
    known = pd.Index(parent_ids)
    bad = ~child[column].isin(known).to_numpy()
    i = _first(bad)
    if i is not None:
        _fail(file, child.index[i] if isinstance(child.index, pd.RangeIndex) else i, column,
              f"unknown {what} {child[column].iloc[i]!r}")


def check_world(world: World) -> None:
    """Rules across tables: every reference points at a record that exists."""
    check_references(world.workers, "household_id", world.households["household_id"], FILES["workers"], "household")
    check_references(world.referrals, "worker_id", world.workers["worker_id"], FILES["referrals"], "worker")
    check_references(world.referrals, "job_id", world.jobs["job_id"], FILES["referrals"], "job")


def load_world(directory: str | Path, *, referrals_optional: bool = True) -> World:
    """Load and validate a world folder; raise SchemaError on the first problem found."""
    d = Path(directory)
    if not d.is_dir():
        raise SchemaError(f"world folder {d} does not exist")
    tables = {}
    for name in TABLES:
        path = d / FILES[name]
        if name == "referrals" and referrals_optional and not path.exists():
            tables[name] = empty_table(name)
            continue
        tables[name] = read_table(name, path)
    world = World(**tables)
    check_world(world)
    return world


def to_csv_frame(name: str, df: pd.DataFrame, *, personal: bool = True) -> pd.DataFrame:
    """The table as the strings its CSV holds (lists joined by ';', booleans true/false).

    The optional personal columns (names, phones) are left out when ``personal`` is false
    (``db export --pseudonymise``) and when the table has no value in them.
    """
    out = {}
    for col in TABLES[name]:
        if col.name in PERSONAL.get(name, ()) and (
                not personal or col.name not in df.columns or not (df[col.name].astype(str) != "").any()):
            continue
        s = df[col.name]
        if col.kind == "list":
            out[col.name] = s.map(";".join)
        elif col.kind == "bool":
            b = s.astype("boolean")
            out[col.name] = pd.Series(np.where(b.isna(), "", np.where(b.fillna(False), "true", "false")),
                                      index=s.index)
        elif col.kind == "date":
            out[col.name] = s.dt.strftime("%Y-%m-%d").fillna("")
        elif col.kind == "float":
            out[col.name] = _fmt_floats(s)
        elif col.kind == "int":
            v = s.astype("Int64")
            out[col.name] = v.astype(str).where(v.notna(), "")
        else:
            out[col.name] = s.astype(str)
    return pd.DataFrame(out, columns=list(out))


def _fmt_floats(s: pd.Series) -> pd.Series:
    """Whole numbers without a decimal point, others with every digit (repr round-trips)."""
    v = s.to_numpy(dtype=float)
    whole = np.isfinite(v) & (np.mod(v, 1) == 0) & (np.abs(v) < 1e15)
    text = np.where(np.isnan(v), "", s.map(repr).to_numpy(dtype=object))
    text[whole] = v[whole].astype(np.int64).astype(str)
    return pd.Series(text, index=s.index, dtype=object)


def write_table(name: str, df: pd.DataFrame, path: str | Path, *, personal: bool = True) -> None:
    to_csv_frame(name, df, personal=personal).to_csv(path, index=False, lineterminator="\n")


def write_world(world: World, directory: str | Path, *, personal: bool = True) -> None:
    """Write the four CSV files; without names and phones when ``personal`` is false."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, df in world.tables().items():
        write_table(name, df, d / FILES[name], personal=personal)
