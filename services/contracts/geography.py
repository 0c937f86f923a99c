"""The reference geography every service measures Copenhagen by: its clock, the box around the
municipality that coordinates must lie in, and distance. (The 10 districts are
:class:`services.contracts.reference.District`.)

Pure values and functions, no I/O.
"""

from __future__ import annotations

import math
from typing import Literal
from zoneinfo import ZoneInfo

COPENHAGEN = ZoneInfo("Europe/Copenhagen")
"""The municipality's clock: opening hours are its wall-clock time and contacts are counted on
its local days (tzdata ships the zone where the OS has none, see pyproject)."""

MUNICIPALITY_LATITUDE = (55.60, 55.74)
MUNICIPALITY_LONGITUDE = (12.45, 12.66)
# A generous box around Copenhagen Municipality (incl. Amager and the harbour); a place outside
# it is a typo (swapped latitude/longitude, a missing digit), not a real municipal building.

OUTSIDE_MUNICIPALITY = "is outside Copenhagen's area"
"""What a coordinate outside the box is told, wherever it is checked."""

EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG)."""


def outside_municipality(
    latitude: float, longitude: float
) -> list[Literal["latitude", "longitude"]]:
    """Which of the two coordinates lie outside the box around the municipality (none: inside)."""
    outside: list[Literal["latitude", "longitude"]] = []
    if not MUNICIPALITY_LATITUDE[0] <= latitude <= MUNICIPALITY_LATITUDE[1]:
        outside.append("latitude")
    if not MUNICIPALITY_LONGITUDE[0] <= longitude <= MUNICIPALITY_LONGITUDE[1]:
        outside.append("longitude")
    return outside


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km. Plenty accurate at city scale (error well below 0.5 %)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))
