"""The split of contacts into general and special needs (services/metrics/needs.py)."""

from __future__ import annotations

from services.contracts import Channel, ContactMode, District
from services.metrics.domain import CellKey
from services.metrics.needs import (
    NeedsGroup,
    group_of,
    special_services,
    split_by_district,
    split_service_by_district,
    total_of,
)
from services.metrics.store import ALL_SERVICES

SELF, ASSISTED = ContactMode.SELF_SERVICE, ContactMode.ASSISTED
CATALOGUE = {"passport": True, "change_of_address": True, "home_care": False, "pension": False}
SPECIAL = special_services(CATALOGUE)


def _mix(district: District, channel: Channel, mode: ContactMode, count: int) -> dict[CellKey, int]:
    return {CellKey(district, channel, mode, ALL_SERVICES): count}


def test_the_special_group_is_the_services_the_catalogue_marks_special() -> None:
    assert {"home_care", "pension"} == SPECIAL


def test_a_service_the_catalogue_does_not_know_is_general() -> None:
    assert group_of("a_code_nobody_registered", SPECIAL) is NeedsGroup.GENERAL
    assert group_of("home_care", SPECIAL) is NeedsGroup.SPECIAL


def test_general_and_special_add_up_to_the_overall_figures_per_channel_and_mode() -> None:
    mix = [
        {
            **_mix(District.VALBY, Channel.DIGITAL, SELF, 70),
            **_mix(District.VALBY, Channel.COUNTER, ASSISTED, 30),
            **_mix(District.VALBY, Channel.PHONE, ASSISTED, 12),
        },
        _mix(District.VALBY, Channel.DIGITAL, SELF, 5),
    ]
    special = [
        {
            **_mix(District.VALBY, Channel.COUNTER, ASSISTED, 20),
            **_mix(District.VALBY, Channel.DIGITAL, SELF, 4),
        },
        {},
    ]
    valby = split_by_district(mix, special)[District.VALBY]
    assert (valby.overall.self_service, valby.overall.assisted) == (75, 42)
    assert (valby.special.self_service, valby.special.assisted) == (4, 20)
    assert (valby.general.self_service, valby.general.assisted) == (71, 22)
    for channel in Channel:
        for mode in ContactMode:
            assert (
                valby.general.channels[channel][mode] + valby.special.channels[channel][mode]
                == valby.overall.channels[channel][mode]
            )


def test_a_district_with_many_special_needs_contacts_has_a_higher_headline_than_overall() -> None:
    # 80 of 100 general-needs contacts are digital; the 50 special-needs ones are at the desk.
    mix = [
        {
            **_mix(District.NORREBRO, Channel.DIGITAL, SELF, 80),
            **_mix(District.NORREBRO, Channel.COUNTER, ASSISTED, 70),
        }
    ]
    special = [_mix(District.NORREBRO, Channel.COUNTER, ASSISTED, 50)]
    norrebro = split_by_district(mix, special)[District.NORREBRO]
    assert norrebro.headline.share == 0.8
    assert norrebro.overall.share is not None
    assert norrebro.overall.share < 0.6
    assert norrebro.special.share == 0.0


def test_one_service_counts_wholly_in_its_group() -> None:
    cells = [
        {
            CellKey(District.VALBY, Channel.MOBILE, ASSISTED, "home_care"): 3,
            CellKey(District.VALBY, Channel.KVIK, SELF, "passport"): 9,
        }
    ]
    valby = split_service_by_district(cells, "home_care", SPECIAL)[District.VALBY]
    assert (valby.overall.total, valby.special.total, valby.general.total) == (3, 3, 0)
    assert valby.headline.share is None


def test_the_total_of_all_districts_keeps_the_split() -> None:
    mix = [
        {
            **_mix(District.VALBY, Channel.DIGITAL, SELF, 10),
            **_mix(District.BISPEBJERG, Channel.PHONE, ASSISTED, 10),
        }
    ]
    special = [_mix(District.BISPEBJERG, Channel.PHONE, ASSISTED, 4)]
    total = total_of(split_by_district(mix, special))
    assert (total.overall.total, total.general.total, total.special.total) == (20, 16, 4)
    assert total.headline.share == 10 / 16
