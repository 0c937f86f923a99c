"""Reference data shared by every service: the closed vocabularies events are written in.

Wire values are explicit ASCII strings, because they end up in Kafka records, Redis keys and
Prometheus labels that outlive any rename in Python. Danish display names live next to them so
that a dashboard never has to keep its own copy.
"""

from __future__ import annotations

from enum import StrEnum


class District(StrEnum):
    """One of the 10 districts (bydele) of Copenhagen."""

    INDRE_BY = "indre-by"
    OSTERBRO = "osterbro"
    NORREBRO = "norrebro"
    VESTERBRO_KONGENS_ENGHAVE = "vesterbro-kongens-enghave"
    VALBY = "valby"
    VANLOSE = "vanlose"
    BRONSHOJ_HUSUM = "bronshoj-husum"
    BISPEBJERG = "bispebjerg"
    AMAGER_OST = "amager-ost"
    AMAGER_VEST = "amager-vest"

    @property
    def display_name(self) -> str:
        """The district's Danish name, e.g. "Østerbro"."""
        return _DISTRICT_NAMES[self]


_DISTRICT_NAMES: dict[District, str] = {
    District.INDRE_BY: "Indre By",
    District.OSTERBRO: "Østerbro",
    District.NORREBRO: "Nørrebro",
    District.VESTERBRO_KONGENS_ENGHAVE: "Vesterbro/Kongens Enghave",
    District.VALBY: "Valby",
    District.VANLOSE: "Vanløse",
    District.BRONSHOJ_HUSUM: "Brønshøj-Husum",
    District.BISPEBJERG: "Bispebjerg",
    District.AMAGER_OST: "Amager Øst",
    District.AMAGER_VEST: "Amager Vest",
}


class Administration(StrEnum):
    """One of the 7 administrations (forvaltninger) of Copenhagen Municipality."""

    OKF = "okf"
    SUF = "suf"
    SOF = "sof"
    KFF = "kff"
    BUF = "buf"
    BIF = "bif"
    TMF = "tmf"

    @property
    def abbreviation(self) -> str:
        """The abbreviation used in municipal papers, e.g. "ØKF"."""
        return _ADMINISTRATION_NAMES[self][0]

    @property
    def english_name(self) -> str:
        """The English name, e.g. "Finance Administration"."""
        return _ADMINISTRATION_NAMES[self][1]

    @property
    def danish_name(self) -> str:
        """The Danish name, e.g. "Økonomiforvaltningen"."""
        return _ADMINISTRATION_NAMES[self][2]

    @property
    def display_name(self) -> str:
        """The name shown to users: the Danish name."""
        return self.danish_name


_ADMINISTRATION_NAMES: dict[Administration, tuple[str, str, str]] = {
    Administration.OKF: ("ØKF", "Finance Administration", "Økonomiforvaltningen"),
    Administration.SUF: (
        "SUF",
        "Health and Care Administration",
        "Sundheds- og Omsorgsforvaltningen",
    ),
    Administration.SOF: ("SOF", "Social Services Administration", "Socialforvaltningen"),
    Administration.KFF: (
        "KFF",
        "Culture and Leisure Administration",
        "Kultur- og Fritidsforvaltningen",
    ),
    Administration.BUF: (
        "BUF",
        "Children and Youth Administration",
        "Børne- og Ungdomsforvaltningen",
    ),
    Administration.BIF: (
        "BIF",
        "Employment and Integration Administration",
        "Beskæftigelses- og Integrationsforvaltningen",
    ),
    Administration.TMF: (
        "TMF",
        "Technical and Environmental Administration",
        "Teknik- og Miljøforvaltningen",
    ),
}


class Channel(StrEnum):
    """The channel a contact came through (docs/architecture.md, Counting contacts)."""

    DIGITAL = "digital"
    PHONE = "phone"
    COUNTER = "counter"
    KVIK = "kvik"
    MOBILE = "mobile"


class ContactMode(StrEnum):
    """Whether the citizen finished the matter alone or with staff; the 80 % figure counts these."""

    SELF_SERVICE = "self_service"
    ASSISTED = "assisted"


class EntryType(StrEnum):
    """The three types of local entry (seed 000, figure 2)."""

    SERVICE_AND_OFFERS = "service_and_offers"
    CASEWORK_AND_DECISIONS = "casework_and_decisions"
    LOCAL_DEMOCRACY = "local_democracy"


class EntryKind(StrEnum):
    """What kind of entry point an entry is."""

    CITIZEN_SERVICE_CENTRE = "citizen_service_centre"
    KVIK_POINT = "kvik_point"
    LIBRARY = "library"
    JOB_CENTRE = "job_centre"
    SOCIAL_CENTRE = "social_centre"
    PENSION_CARE_OFFICE = "pension_care_office"
    HEALTH_HOUSE = "health_house"
    LOCAL_COMMITTEE = "local_committee"
    MOBILE_STOP = "mobile_stop"
    CONTACT_CENTRE = "contact_centre"
    DIGITAL = "digital"


CITIZEN_SERVICE_KINDS = frozenset(
    {EntryKind.CITIZEN_SERVICE_CENTRE, EntryKind.KVIK_POINT, EntryKind.MOBILE_STOP}
)
"""The kinds of entry that make a district "covered": the seeds' goal is at least one open
entry of these kinds in each of the 10 districts (the registry and metrics both report it)."""


class EntryStatus(StrEnum):
    """Where an entry is in its life: planned, open, temporarily closed or closed for good."""

    PLANNED = "planned"
    OPEN = "open"
    TEMPORARILY_CLOSED = "temporarily_closed"
    CLOSED = "closed"


class Coverage(StrEnum):
    """The area an entry serves: lokal, områdedækkende or bydækkende."""

    LOCAL = "local"
    AREA = "area"
    CITY_WIDE = "city_wide"


class HelpChannel(StrEnum):
    """How staff helped a citizen at a KVIK point; ``none`` means the citizen managed alone."""

    NONE = "none"
    VIDEO = "video"
    PHONE = "phone"
    IN_PERSON = "in_person"


class SessionOutcome(StrEnum):
    """How a KVIK self-service session ended."""

    COMPLETED = "completed"
    ABANDONED = "abandoned"
    REFERRED = "referred"


class ContactSource(StrEnum):
    """An external system that reports daily contact counts to the metrics service."""

    DIGITAL_PLATFORM = "digital_platform"
    CONTACT_CENTRE = "contact_centre"


class TicketOutcome(StrEnum):
    """How a queue-management ticket at a citizen-service centre ended."""

    SERVED = "served"
    """The citizen was served at a desk: one assisted contact on the counter channel."""
    NO_SHOW = "no_show"
    """The ticket was called (or closed) and the citizen did not turn up: no contact."""
