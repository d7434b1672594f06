"""Rizhao's administrative divisions (counties, townships, villages) with coordinates.

Only the city, its four county-level divisions and eight townships have public
centroids (``data/rizhao/points.csv``, see ``data/SOURCES.md``). Every other point is
placed here deterministically, seeded by its own division code (never by a world's
seed), so the same village sits at the same place in every world and every release:

- a township without a centroid is scattered inside its county: uniform in a disk
  around the county centroid of radius ``0.35 R`` for urban sub-districts (街道, codes
  ``0xx``, which surround the county seat) and ``0.85 R`` for towns (镇/乡), with ``R``
  the county's equivalent radius (``sqrt(area / pi)``), at least 3 km from every
  township placed before it (codes in ascending order, known ones first);
- a village is scattered uniformly in a disk around its township's point, 2.5 km for
  a sub-district and 5 km for a town (Rizhao: 5,359 km2 over 56 townships, about
  96 km2 or a 5.5 km radius each).

Every placed point is kept on land-ish plausible bounds: latitude 35.0-36.0,
longitude 118.5-119.7 and west of a straight-line approximation of the coast
(``lon <= 119.38 + 0.62 (lat - 35.10)``, which passes east of every known point).
Placed points carry ``coord_source = "approximate"``; points from ``points.csv``
carry ``"exact"``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from matcher.config import DATA_DIR

RIZHAO_DIR = DATA_DIR / "rizhao"

LAT_BOUNDS = (35.0, 36.0)
LON_BOUNDS = (118.5, 119.7)
# Where a household or a located job of Rizhao may lie: the city's extent (35°04'-36°04' N,
# 118°25'-119°39' E) widened to hold every point placed here (LAT_BOUNDS, LON_BOUNDS), with about
# 1 km to spare for the jitter of generated homes. Anything beyond is not in Rizhao.
CITY_LAT = (34.99, 36.08)
CITY_LON = (118.40, 119.71)
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_EQUATOR = 111.320

# Land area (km2) of each county-level division, for its equivalent radius. 371171
# (日照经济技术开发区) is carved out of 东港区 and has no published centroid: we treat it
# as inside 东港区, centred 6 km south-southwest of 东港区's centroid (towards 奎山), and
# mark that centre approximate.
COUNTY_AREA_KM2 = {"371102": 1644.0, "371103": 760.0, "371121": 1497.0, "371122": 1821.0, "371171": 120.0}
DEV_ZONE = "371171"
DEV_ZONE_PARENT = "371102"
DEV_ZONE_OFFSET_KM = (-5.6, -2.2)      # (north, east) from 东港区's centroid

URBAN_TOWN_SHARE = 0.35      # 街道 scatter radius, share of the county radius
RURAL_TOWN_SHARE = 0.85      # 镇/乡 scatter radius, share of the county radius
MIN_TOWN_SPACING_KM = 3.0
VILLAGE_RADIUS_KM = {"urban": 2.5, "rural": 5.0}

_VILLAGE_SUFFIX = r"(村民委员会|居民委员会|村委会|居委会|民委会|委会会|委员会)$"


def _max_lon(lat):
    """Longitude of the (straight-line) coast at a latitude: the sea is east of it."""
    return np.minimum(119.38 + 0.62 * (np.asarray(lat, dtype=float) - 35.10), LON_BOUNDS[1])


def on_land(lat, lon) -> np.ndarray:
    """True where a point is inside the plausible bounds of Rizhao's land."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    return ((lat >= LAT_BOUNDS[0]) & (lat <= LAT_BOUNDS[1]) & (lon >= LON_BOUNDS[0])
            & (lon <= _max_lon(lat)))


def offset_km(lat, lon, north_km, east_km):
    """The point north_km north and east_km east of (lat, lon), on a local flat approximation."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    new_lat = lat + np.asarray(north_km, dtype=float) / KM_PER_DEG_LAT
    new_lon = lon + np.asarray(east_km, dtype=float) / (KM_PER_DEG_LON_EQUATOR * np.cos(np.radians(lat)))
    return new_lat, new_lon


def _disk(rng: np.random.Generator, radius_km: float, n: int = 1):
    """n points uniform in a disk: (north_km, east_km)."""
    r = radius_km * np.sqrt(rng.random(n))
    a = rng.random(n) * 2 * np.pi
    return r * np.cos(a), r * np.sin(a)


def _place_in_disk(code: str, lat: float, lon: float, radius_km: float, avoid: list[tuple[float, float]] = (),
                   min_km: float = 0.0) -> tuple[float, float]:
    """A point in the disk, on land and away from `avoid`, drawn from a generator seeded by `code`."""
    rng = np.random.default_rng(int(code))
    best = None
    for _ in range(500):
        dn, de = _disk(rng, radius_km)
        plat, plon = offset_km(lat, lon, dn[0], de[0])
        if not on_land(plat, plon):
            continue
        if best is None:
            best = (float(plat), float(plon))
        if all(_km(plat, plon, a, b) >= min_km for a, b in avoid):
            return float(plat), float(plon)
    if best is None:        # the centre itself is always on land for Rizhao's divisions
        return float(lat), float(lon)
    return best


def _km(lat1, lon1, lat2, lon2) -> float:
    dn = (lat2 - lat1) * KM_PER_DEG_LAT
    de = (lon2 - lon1) * KM_PER_DEG_LON_EQUATOR * np.cos(np.radians((lat1 + lat2) / 2))
    return float(np.hypot(dn, de))


def county_radius_km(county_code: str) -> float:
    return float(np.sqrt(COUNTY_AREA_KM2[county_code] / np.pi))


def is_urban_town(town_code: str) -> bool:
    """Sub-districts (街道) have codes 001-099 within their county; towns 1xx, townships 2xx."""
    return town_code[6] == "0"


@lru_cache(maxsize=1)
def _points() -> pd.DataFrame:
    return pd.read_csv(RIZHAO_DIR / "points.csv", dtype=str, keep_default_na=False)


@lru_cache(maxsize=1)
def _counties() -> pd.DataFrame:
    pts = _points().set_index("code")
    town_rows = pd.read_csv(RIZHAO_DIR / "townships.csv", dtype=str, keep_default_na=False)
    names = {"371102": "东港区", "371103": "岚山区", "371121": "五莲县", "371122": "莒县",
             DEV_ZONE: "日照经济技术开发区"}
    rows = []
    for code in sorted(town_rows["areaCode"].unique()):
        if code in pts.index:
            lat, lon, source = float(pts.at[code, "lat"]), float(pts.at[code, "lon"]), "exact"
        elif code == DEV_ZONE:
            parent = pts.loc[DEV_ZONE_PARENT]
            lat, lon = offset_km(float(parent["lat"]), float(parent["lon"]), *DEV_ZONE_OFFSET_KM)
            lat, lon, source = float(lat), float(lon), "approximate"
        else:
            raise ValueError(f"county {code} has no centroid and no placement rule")
        rows.append(dict(county_code=code, name=names.get(code, str(pts.at[code, "name"]) if code in pts.index else code),
                         lat=lat, lon=lon, radius_km=county_radius_km(code), coord_source=source))
    return pd.DataFrame(rows)


def counties() -> pd.DataFrame:
    """The five county-level divisions: county_code, name, lat, lon, radius_km, coord_source."""
    return _counties().copy()


@lru_cache(maxsize=1)
def _townships() -> pd.DataFrame:
    raw = pd.read_csv(RIZHAO_DIR / "townships.csv", dtype=str, keep_default_na=False)
    raw = raw.sort_values("code", kind="stable").reset_index(drop=True)
    pts = _points().set_index("code")
    cty = _counties().set_index("county_code")
    placed: dict[str, tuple[float, float, str]] = {}
    for code in raw["code"]:
        if code in pts.index:
            placed[code] = (float(pts.at[code, "lat"]), float(pts.at[code, "lon"]), "exact")
    for code, county in zip(raw["code"], raw["areaCode"]):
        if code in placed:
            continue
        c = cty.loc[county]
        share = URBAN_TOWN_SHARE if is_urban_town(code) else RURAL_TOWN_SHARE
        if county == DEV_ZONE:
            share = 1.0   # the zone is small: its two sub-districts fill it
        avoid = [(a, b) for a, b, _ in placed.values()]
        lat, lon = _place_in_disk(code, c["lat"], c["lon"], share * c["radius_km"], avoid, MIN_TOWN_SPACING_KM)
        placed[code] = (lat, lon, "approximate")
    out = raw.rename(columns={"code": "town_code", "areaCode": "county_code"})[["town_code", "name", "county_code"]]
    out["lat"] = [placed[c][0] for c in out["town_code"]]
    out["lon"] = [placed[c][1] for c in out["town_code"]]
    out["urban"] = [is_urban_town(c) for c in out["town_code"]]
    out["coord_source"] = [placed[c][2] for c in out["town_code"]]
    return out


def townships() -> pd.DataFrame:
    """All 56 townships: town_code, name, county_code, lat, lon, urban, coord_source."""
    return _townships().copy()


@lru_cache(maxsize=1)
def _villages() -> pd.DataFrame:
    raw = pd.read_csv(RIZHAO_DIR / "villages.csv", dtype=str, keep_default_na=False)
    raw = raw.sort_values("code", kind="stable").reset_index(drop=True)
    towns = _townships().set_index("town_code")
    lat = np.empty(len(raw))
    lon = np.empty(len(raw))
    for i, (code, town) in enumerate(zip(raw["code"], raw["streetCode"])):
        t = towns.loc[town]
        radius = VILLAGE_RADIUS_KM["urban" if t["urban"] else "rural"]
        lat[i], lon[i] = _place_in_disk(code, t["lat"], t["lon"], radius)
    out = pd.DataFrame({
        "village_code": raw["code"],
        "name": raw["name"],
        "short_name": raw["name"].str.replace(_VILLAGE_SUFFIX, "", regex=True),
        "town_code": raw["streetCode"],
        "county_code": raw["areaCode"],
        "lat": lat,
        "lon": lon,
        # 社区/居委会 are urban neighbourhoods; 村 are villages proper.
        "rural": ~raw["name"].str.contains("社区|居委会|居民委员会", regex=True),
        "coord_source": "approximate",
    })
    return out


def villages() -> pd.DataFrame:
    """All 1,679 villages: village_code, name, short_name, town_code, county_code, lat, lon, rural, coord_source."""
    return _villages().copy()


@lru_cache(maxsize=1)
def place_codes() -> dict[str, frozenset[str]]:
    """The shipped division codes by level: ``county``, ``town``, ``village``."""
    return {"county": frozenset(_counties()["county_code"]),
            "town": frozenset(pd.read_csv(RIZHAO_DIR / "townships.csv", dtype=str, keep_default_na=False)["code"]),
            "village": frozenset(pd.read_csv(RIZHAO_DIR / "villages.csv", dtype=str, keep_default_na=False)["code"])}


def in_city(lat, lon) -> np.ndarray:
    """True where a point lies within Rizhao's bounds (:data:`CITY_LAT`, :data:`CITY_LON`)."""
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    with np.errstate(invalid="ignore"):
        return (lat >= CITY_LAT[0]) & (lat <= CITY_LAT[1]) & (lon >= CITY_LON[0]) & (lon <= CITY_LON[1])


__all__ = ["place_codes", "in_city", "counties", "townships", "villages", "on_land", "offset_km", "county_radius_km", "is_urban_town"]
