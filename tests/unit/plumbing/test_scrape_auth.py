"""The /metrics scrape decision: defaults per environment and the bearer check."""

from __future__ import annotations

import pytest

from services.metrics.settings import MetricsSettings, PublicPage
from services.plumbing.problems import Problem
from services.plumbing.scrape_auth import PrometheusAuth, check_scrape
from services.plumbing.settings import Environment, HubSettings

STRONG = "Zq7v-Rk2m-Tp9x-Lw4c-Hs8n-Bd3f-Jy6g-Qe1a"


def _hub(environment: Environment, **overrides: object) -> HubSettings:
    return HubSettings(
        environment=environment,
        jwt_secret=STRONG,
        subject_key=STRONG[::-1],
        **overrides,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("environment", "scrape", "page"),
    [
        (Environment.DEVELOPMENT, PrometheusAuth.NONE, PublicPage.OPEN),
        (Environment.TEST, PrometheusAuth.NONE, PublicPage.OPEN),
        (Environment.PRODUCTION, PrometheusAuth.BEARER, PublicPage.PROTECTED),
    ],
)
def test_public_surfaces_are_open_in_development_and_protected_in_production(
    environment: Environment, scrape: PrometheusAuth, page: PublicPage
) -> None:
    hub = _hub(environment)
    assert hub.scrape_auth is scrape
    assert MetricsSettings(hub=hub).page_access is page


def test_production_may_open_them_by_configuration() -> None:
    hub = _hub(Environment.PRODUCTION, prometheus_auth="none")
    assert hub.scrape_auth is PrometheusAuth.NONE
    assert MetricsSettings(hub=hub, public_page="open").page_access is PublicPage.OPEN


def test_the_old_switch_still_turns_the_page_off() -> None:
    settings = MetricsSettings(hub=_hub(Environment.DEVELOPMENT), dashboard_page=False)
    assert settings.page_access is PublicPage.OFF


def test_an_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="prometheus_auth"):
        HubSettings(prometheus_auth="basic")


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer wrong", "Basic secret-token", "secret-token"]
)
def test_bearer_refuses_anything_but_the_token(header: str | None) -> None:
    with pytest.raises(Problem) as refused:
        check_scrape(header, PrometheusAuth.BEARER, "secret-token")
    assert refused.value.status == 401


def test_bearer_lets_the_token_in_and_none_lets_anyone_in() -> None:
    check_scrape("Bearer secret-token", PrometheusAuth.BEARER, "secret-token")
    check_scrape(None, PrometheusAuth.NONE, None)


def test_bearer_without_a_configured_token_refuses_even_an_empty_one() -> None:
    with pytest.raises(Problem):
        check_scrape("Bearer ", PrometheusAuth.BEARER, None)
