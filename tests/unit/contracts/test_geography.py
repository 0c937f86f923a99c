"""The contract's reference geography (services/contracts/geography.py): the box around the
municipality and distance."""

from __future__ import annotations

from services.contracts.geography import haversine_km, outside_municipality


def test_coordinates_outside_copenhagen_are_named() -> None:
    # Aarhus: right country, wrong city.
    assert outside_municipality(56.1567, 10.2108) == ["latitude", "longitude"]
    # Swapped latitude and longitude: both out.
    assert outside_municipality(12.5700, 55.6759) == ["latitude", "longitude"]
    # Only the longitude off (Roskilde's, at Copenhagen's latitude).
    assert outside_municipality(55.6759, 12.0800) == ["longitude"]


def test_city_hall_is_inside_the_municipality() -> None:
    assert outside_municipality(55.6759, 12.5700) == []


def test_haversine_gives_the_city_hall_to_islands_brygge_distance() -> None:
    # About 1.2 km as the crow flies.
    distance = haversine_km(55.6759, 12.5700, 55.6655, 12.5780)
    assert 1.1 < distance < 1.4
