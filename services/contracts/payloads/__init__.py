"""The ``data`` models of every event, one module per publishing service."""

from services.contracts.payloads.base import ContractModel, Payload
from services.contracts.payloads.contacts import CountReported, DistrictShareChanged
from services.contracts.payloads.desk import DeskDayReported, DeskTicket, DeskTicketEnded
from services.contracts.payloads.kvik import (
    HelpAnswered,
    HelpRequested,
    KioskOffline,
    KioskOnline,
    KioskRegistered,
    SessionAbandoned,
    SessionCompleted,
    SessionReferred,
)
from services.contracts.payloads.mobile import (
    ContactRecorded,
    VisitCancelled,
    VisitCompleted,
    VisitPlanned,
)
from services.contracts.payloads.registry import (
    Address,
    EntryRetired,
    EntryUpserted,
    OpeningException,
    OpeningHours,
    ServiceRetired,
    ServiceUpserted,
    SiteRetired,
    SiteUpserted,
    WeeklyOpening,
)

__all__ = [
    "Address",
    "ContactRecorded",
    "ContractModel",
    "CountReported",
    "DeskDayReported",
    "DeskTicket",
    "DeskTicketEnded",
    "DistrictShareChanged",
    "EntryRetired",
    "EntryUpserted",
    "HelpAnswered",
    "HelpRequested",
    "KioskOffline",
    "KioskOnline",
    "KioskRegistered",
    "OpeningException",
    "OpeningHours",
    "Payload",
    "ServiceRetired",
    "ServiceUpserted",
    "SessionAbandoned",
    "SessionCompleted",
    "SessionReferred",
    "SiteRetired",
    "SiteUpserted",
    "VisitCancelled",
    "VisitCompleted",
    "VisitPlanned",
    "WeeklyOpening",
]
