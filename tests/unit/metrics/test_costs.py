"""Cost per contact and the saving at 80 %."""

from __future__ import annotations

import pytest

from services.contracts import Channel, ContactMode, District
from services.metrics.costs import cost_report
from services.metrics.domain import CellKey, Share
from services.metrics.settings import DEFAULT_UNIT_COSTS_DKK

COSTS = {
    Channel.DIGITAL: 5.0,
    Channel.PHONE: 40.0,
    Channel.COUNTER: 100.0,
    Channel.KVIK: 20.0,
    Channel.MOBILE: 150.0,
}


def _share(**counts: int) -> Share:
    share = Share()
    for name, count in counts.items():
        channel, mode = name.split("__")
        share.add(CellKey(District.VALBY, Channel(channel), ContactMode(mode), ""), count)
    return share


def test_each_channel_costs_its_contacts_times_its_unit_cost() -> None:
    report = cost_report(_share(digital__self_service=60, phone__assisted=40), COSTS)
    by_channel = {c.channel: c.cost for c in report.channels}
    assert by_channel[Channel.DIGITAL] == 300.0
    assert by_channel[Channel.PHONE] == 1600.0
    assert report.cost_per_contact == pytest.approx(1900 / 100)


def test_the_saving_moves_enough_assisted_contacts_to_digital_for_80() -> None:
    # 60 of 100 self-service: 20 phone contacts would have to be digital, 35 kr saved each.
    report = cost_report(_share(digital__self_service=60, phone__assisted=40), COSTS)
    assert report.contacts_to_move == 20
    assert report.saving_at_target == pytest.approx(20 * (40 - 5))


def test_a_district_past_80_saves_nothing_more() -> None:
    report = cost_report(_share(digital__self_service=90, counter__assisted=10), COSTS)
    assert (report.contacts_to_move, report.saving_at_target) == (0, 0.0)


def test_no_contacts_have_no_cost_per_contact() -> None:
    assert cost_report(Share(), COSTS).cost_per_contact is None


def test_every_channel_has_a_default_unit_cost() -> None:
    assert set(DEFAULT_UNIT_COSTS_DKK) == set(Channel)
