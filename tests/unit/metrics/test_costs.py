"""Cost per contact and the saving at the target."""

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
    report = cost_report(_share(digital__self_service=60, phone__assisted=40), COSTS, 0.8)
    by_channel = {c.channel: c.cost for c in report.channels}
    assert by_channel[Channel.DIGITAL] == 300.0
    assert by_channel[Channel.PHONE] == 1600.0
    assert report.cost_per_contact == pytest.approx(1900 / 100)


def test_the_saving_moves_enough_assisted_contacts_to_digital_for_80() -> None:
    # 60 of 100 self-service: 20 phone contacts would have to be digital, 35 kr saved each.
    report = cost_report(_share(digital__self_service=60, phone__assisted=40), COSTS, 0.8)
    assert report.contacts_to_move == 20
    assert report.saving_at_target == pytest.approx(20 * (40 - 5))


def test_a_district_past_80_saves_nothing_more() -> None:
    report = cost_report(_share(digital__self_service=90, counter__assisted=10), COSTS, 0.8)
    assert (report.contacts_to_move, report.saving_at_target) == (0, 0.0)


def test_no_contacts_have_no_cost_per_contact() -> None:
    assert cost_report(Share(), COSTS, 0.8).cost_per_contact is None


def test_every_channel_has_a_default_unit_cost() -> None:
    assert set(DEFAULT_UNIT_COSTS_DKK) == set(Channel)


def test_only_general_needs_contacts_are_moved_for_the_target() -> None:
    # All: 60 digital + 40 phone + 50 counter; of them general needs: 60 digital + 40 phone.
    # For 80 % of the general-needs contacts, 20 phone contacts move; the special-needs counter
    # contacts stay where they are, and the costs are of all contacts.
    everything = _share(digital__self_service=60, phone__assisted=40, counter__assisted=50)
    general = _share(digital__self_service=60, phone__assisted=40)
    report = cost_report(everything, COSTS, 0.8, headline=general)
    assert report.contacts_to_move == 20
    assert report.saving_at_target == pytest.approx(20 * (40 - 5))
    assert report.total_cost == 60 * 5 + 40 * 40 + 50 * 100


def test_the_target_decides_how_many_contacts_move() -> None:
    share = _share(digital__self_service=60, phone__assisted=40)
    assert cost_report(share, COSTS, 0.7).contacts_to_move == 10
    assert cost_report(share, COSTS, 1.0).contacts_to_move == 40
