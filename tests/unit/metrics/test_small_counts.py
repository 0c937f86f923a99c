"""Small-count suppression: the rule itself and the threshold each page setting gets."""

from __future__ import annotations

from services.metrics import page
from services.metrics.settings import MetricsSettings, PublicPage
from services.metrics.small_counts import SmallCounts
from services.plumbing.settings import Environment, HubSettings


def test_a_count_below_the_threshold_is_shown_as_less_than_the_threshold() -> None:
    small = SmallCounts(10)
    assert [small.count(n) for n in (0, 1, 9, 10, 11)] == ["<10", "<10", "<10", 10, 11]


def test_a_share_of_fewer_contacts_than_the_threshold_is_not_shown() -> None:
    small = SmallCounts(10)
    assert (small.share(0.5, 9), small.share(0.5, 10)) == (None, 0.5)


def test_threshold_zero_shows_everything() -> None:
    small = SmallCounts(0)
    assert (small.count(0), small.count(1), small.share(1.0, 1)) == (0, 1, 1.0)


def test_an_open_page_in_production_suppresses_below_ten_by_default() -> None:
    # constructed without validation: the production secret checks are not what this tests
    hub = HubSettings.model_construct(environment=Environment.PRODUCTION)
    settings = MetricsSettings.model_construct(hub=hub, public_page=PublicPage.OPEN)
    assert settings.page_min_count == 10


def test_an_open_page_in_development_shows_exact_figures_by_default() -> None:
    settings = MetricsSettings(hub=HubSettings(), public_page="open")
    assert settings.page_min_count == 0


def test_the_configured_threshold_applies_to_an_open_page() -> None:
    settings = MetricsSettings(hub=HubSettings(), public_page="open", public_min_count=5)
    assert settings.page_min_count == 5


def test_a_protected_page_shows_everything_whatever_the_threshold() -> None:
    settings = MetricsSettings(hub=HubSettings(), public_page="protected", public_min_count=10)
    assert settings.page_min_count == 0


def _render(template: str, small: SmallCounts, **context: object) -> str:
    return page._TEMPLATES.get_template(template).render(
        t=page.LABELS["en"], window="Last 28 days", small=small, **context
    )


DESK = page.DeskRow("entry-a", "Centre A", 3, 1, 600.0, 900.0, 480.0)
USAGE = page.UsageRow("entry-a", "Entry A", "Site A", 2, 1, 0, 3, 30.0, 0.1)


def test_an_open_page_withholds_the_desk_times_of_few_tickets() -> None:
    html = _render("desk_table.html", SmallCounts(10), desk=[DESK])
    assert 'data-served="&lt;10"' in html
    assert 'data-wait-p50=""' in html
    assert "10 min" not in html  # the median wait of three tickets


def test_an_open_page_withholds_the_rate_per_open_hour_of_a_small_total() -> None:
    html = _render("usage_table.html", SmallCounts(10), usage=[USAGE], usage_more=0)
    assert 'data-total="&lt;10"' in html
    assert 'data-per-open-hour=""' in html


def test_without_a_threshold_the_tables_show_every_figure() -> None:
    desk = _render("desk_table.html", SmallCounts(0), desk=[DESK])
    usage = _render("usage_table.html", SmallCounts(0), usage=[USAGE], usage_more=0)
    assert 'data-served="3"' in desk
    assert 'data-wait-p50="600.0"' in desk
    assert 'data-total="3"' in usage
    assert 'data-per-open-hour="0.1000"' in usage
