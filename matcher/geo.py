"""Great-circle distances and the spatial index over jobs."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import BallTree

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km, element-wise over arrays (NaN where a point is missing)."""
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(a, dtype=float)) for a in (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def radians_and_cos(lat, lon) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latitude and longitude in radians and the cosine of the latitude, computed once per point so that
    :func:`haversine_prepared` does per pair only what depends on the pair."""
    rlat = np.radians(np.asarray(lat, dtype=float))
    return rlat, np.radians(np.asarray(lon, dtype=float)), np.cos(rlat)


def haversine_prepared(rlat1, rlon1, cos1, rlat2, rlon2, cos2) -> np.ndarray:
    """:func:`haversine_km` from prepared points (:func:`radians_and_cos`): the same operations on the
    same values, so the same result to the last bit, without converting each pair's ends again."""
    a = np.sin((rlat2 - rlat1) / 2) ** 2 + cos1 * cos2 * np.sin((rlon2 - rlon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


class JobIndex:
    """A BallTree (haversine metric) over the located jobs, for radius queries.

    A worker is compared only with jobs within reach, never with every job in the city.
    """

    def __init__(self, lat: np.ndarray, lon: np.ndarray):
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        self.located = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
        pts = np.radians(np.column_stack([lat[self.located], lon[self.located]]))
        self.tree = BallTree(pts, metric="haversine") if len(pts) else None

    def within(self, lat: np.ndarray, lon: np.ndarray, radius_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (query row, job row) with great-circle distance <= radius_km[query row].

        Returns two int64 arrays of equal length; a small tolerance guards the bound
        against floating-point error, and callers re-check the exact distance.
        """
        lat = np.atleast_1d(np.asarray(lat, dtype=float))
        lon = np.atleast_1d(np.asarray(lon, dtype=float))
        radius = np.broadcast_to(np.asarray(radius_km, dtype=float), lat.shape)
        ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(radius) & (radius >= 0)
        if self.tree is None or not ok.any():
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        rows = np.flatnonzero(ok)
        q = np.radians(np.column_stack([lat[rows], lon[rows]]))
        hits = self.tree.query_radius(q, r=(radius[rows] + 1e-6) / EARTH_RADIUS_KM)
        sizes = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        query_rows = np.repeat(rows, sizes)
        job_rows = self.located[np.concatenate(hits).astype(np.int64)] if sizes.sum() else np.zeros(0, np.int64)
        return query_rows.astype(np.int64), job_rows.astype(np.int64)
