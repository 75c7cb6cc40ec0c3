"""The operator dashboard over HTTP: closed without a password, a login that leads only into the dashboard,
sessions that end, and pages whose figures are the database's.

The shop is run by the real engine on a clock the test holds: customers sign up (the welcome journey
sends), one leaves a cart (the abandoned-cart journey waits), one orders (post-purchase sends and waits),
messages go out through the outbox, a customer talks to the bot (Rasa's events read back by engage's own
reader), and recommendations are shown and clicked.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from engage.bootstrap import Engage, bootstrap
from engage.recommend.evaluation import write_report
from engage.recommend.evaluation.metrics import METRICS
from engage.recommend.evaluation.runner import Evaluation, ModelResult
from engage.web import create_app
from engage.web.admin import PASSWORD_VARIABLE
from engage.web.admin.session import COOKIE
from tests.conftest import MakeWorkspace
from tests.helpers import Clock, logged, track
from tests.journeys.conftest import MONDAY_NOON_IN_NEW_YORK, Shop, customer, open_shop

PASSWORD = "correct horse battery staple"
PAGES = [
    "/admin",
    "/admin/segments",
    "/admin/journeys",
    "/admin/messages",
    "/admin/recommendations",
    "/admin/conversations",
]


# -- reading pages ------------------------------------------------------------------------------------


class _Figures(HTMLParser):
    """The text of every element with a `data-testid`, by test id, in page order."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, list[str]] = {}
        self.attributes: dict[str, list[dict[str, str | None]]] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        testid = dict(attrs).get("data-testid")
        if testid:
            self.found.setdefault(testid, []).append("")
            self.attributes.setdefault(testid, []).append(dict(attrs))
        if tag not in self.VOID:
            self._open.append((tag, testid))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, testid in self._open:
            if testid:
                self.found[testid][-1] += data


def figures(page: str) -> dict[str, list[str]]:
    """Each test id's texts, whitespace collapsed."""
    parser = _Figures()
    parser.feed(page)
    return {testid: [" ".join(text.split()) for text in texts] for testid, texts in parser.found.items()}


def attributes(page: str, testid: str) -> list[dict[str, str | None]]:
    parser = _Figures()
    parser.feed(page)
    return parser.attributes[testid]


def number(page: str, testid: str) -> int:
    (shown,) = figures(page)[testid]
    return int(shown.replace(",", ""))


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    return PASSWORD


@pytest.fixture
def bare(make_workspace: MakeWorkspace, tmp_path: Path) -> Iterator[TestClient]:
    """The app on an empty shop (SQLite): for what does not depend on data."""
    engage = bootstrap(make_workspace(database_url=f"sqlite:///{tmp_path / 'engage.db'}"))
    with TestClient(create_app(engage), follow_redirects=False) as client:
        yield client
    engage.close()


def log_in(client: TestClient, next_page: str = "/admin") -> Any:
    return client.post("/admin/login", data={"password": PASSWORD, "next": next_page})


@pytest.fixture
def dashboard(
    make_workspace: MakeWorkspace, database_url: str, password: str
) -> Iterator[tuple[TestClient, Shop]]:
    """A logged-in client of a shop that has run for a while, on SQLite and on PostgreSQL."""
    shop = open_shop(make_workspace, database_url, Clock(MONDAY_NOON_IN_NEW_YORK))
    populate(shop)
    with TestClient(create_app(shop.engage), follow_redirects=False) as client:
        assert log_in(client).status_code == 303
        yield client, shop
    shop.engage.close()


def populate(shop: Shop) -> None:
    shop.shipped("signup_welcome", "abandoned_cart", "post_purchase")
    people = ["ann", "bob", "cy", "dee"]
    shop.send(*(customer(person) for person in people))
    shop.send(*(track(person, "UserSignedUp") for person in people))
    shop.send(
        track("ann", "ProductAdded", cart_id="c-1", product_id="1"),
        track("bob", "OrderCompleted", order_id="o-1", revenue=42.0),
    )
    shop.engage.messaging.dispatch()
    items = [product.id for product in shop.engage.recommend.catalog][:3]
    shown = [("r1", "chat", "for_you"), ("r2", "email", "for_you"), ("r3", "chat", "related")]
    clicks = [
        ("r1", "chat", items[0]),
        ("r1", "chat", items[1]),
        ("r2", "email", items[0]),
        ("r9", "sms", "1"),
    ]
    shop.send(
        *(
            {**track("dee", "RecommendationShown", recommendation_id=ident, use_case=use_case, items=items),
             "messageId": f"rec-{ident}", "context": {"channel": channel}}
            for ident, channel, use_case in shown
        ),
        *(
            {**track("dee", "RecommendationClicked", recommendation_id=ident, product_id=item),
             "context": {"channel": channel}}
            for ident, channel, item in clicks
        ),
    )  # fmt: skip
    at = MONDAY_NOON_IN_NEW_YORK.timestamp()
    said = {"event": "user", "text": "something for the kitchen", "message_id": "m1", "timestamp": at,
            "metadata": {"user_id": "cy"}, "parse_data": {"intent": {"name": "recommend", "confidence": 0.93},
            "entities": [{"entity": "category", "value": "housewares"}]}}  # fmt: skip
    answered = {"event": "bot", "text": "Here are a few ideas", "timestamp": at + 1}
    shop.engage.chat.events.ingest([("1", "cy-web", said), ("2", "cy-web", answered)])
    shop.run()


def scalar(engage: Engage, sql: str, **params: Any) -> Any:
    with engage.database.read() as connection:
        return connection.execute(text(sql), params).scalar_one()


# -- the door -----------------------------------------------------------------------------------------


def test_without_a_password_every_page_is_closed(bare: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_VARIABLE, raising=False)
    for path in [*PAGES, "/admin/login", "/admin/messages/nope"]:
        response = bare.get(path)
        assert response.status_code == 503, path
        assert PASSWORD_VARIABLE in response.text
    response = bare.post("/admin/login", data={"password": ""})
    assert response.status_code == 503
    assert COOKIE not in response.headers.get("set-cookie", "")


def test_a_visitor_is_sent_to_the_login_form_and_back(bare: TestClient, password: str) -> None:
    response = bare.get("/admin/messages?status=sent")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=" + quote(
        "/admin/messages?status=sent", safe=""
    )
    form = bare.get(response.headers["location"])
    assert form.status_code == 200
    assert 'name="next" value="/admin/messages?status=sent"' in form.text
    for path in PAGES:
        assert bare.get(path).status_code == 303, path

    logged_in = log_in(bare, "/admin/messages?status=sent")
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == "/admin/messages?status=sent"
    cookie = logged_in.headers["set-cookie"].lower()
    # Path `/`: the session also reads the /v1 API (tests/web/test_api_tokens.py).
    assert all(part in cookie for part in ("httponly", "samesite=lax", "path=/;", "max-age=43200"))
    for path in PAGES:
        assert bare.get(path).status_code == 200, path

    assert bare.post("/admin/logout").status_code == 303
    assert bare.get("/admin").status_code == 303


def test_a_wrong_password_gets_the_form_again_and_no_session(bare: TestClient, password: str) -> None:
    response = bare.post("/admin/login", data={"password": "guess", "next": "/admin/journeys"})
    assert response.status_code == 401
    assert figures(response.text)["login-error"] == ["That password is not right."]
    assert 'name="next" value="/admin/journeys"' in response.text
    assert "set-cookie" not in response.headers
    assert bare.get("/admin").status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/admin",
        "//evil.example/admin",
        "/\\evil.example/admin",
        "\\\\evil.example/admin",
        "/admin-evil",
        "javascript:alert(1)",
        "/admin\r\nLocation: https://evil.example",
        "",
    ],
)
def test_next_only_leads_into_the_dashboard(bare: TestClient, password: str, target: str) -> None:
    assert log_in(bare, target).headers["location"] == "/admin"
    form = bare.get("/admin/login", params={"next": target})
    assert form.headers["location"] == "/admin"  # already logged in: straight to the dashboard


def every_route(router: Any) -> Iterator[Any]:
    """The routes of `router` and of the routers it includes (FastAPI 0.165 keeps an included router whole,
    as `original_router`; older releases copied its routes in; no router here adds a prefix of its own to
    another's)."""
    for route in router.routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from every_route(included)
        elif hasattr(route, "methods"):
            yield route


def test_no_dashboard_route_is_open_without_a_session(bare: TestClient, password: str) -> None:
    """Every route under /admin but the login form and logout sends a visitor to log in: a new page or
    endpoint that forgot its guard fails here. An API token opens none of them (the dashboard is for the
    operator's browser)."""
    engage = bare.app.state.engage  # type: ignore[attr-defined]
    token = engage.tokens.create("ops", ["admin"]).value
    routes = [
        (method, route.path)
        for route in every_route(bare.app.router)  # type: ignore[attr-defined]
        if route.path.startswith("/admin") and route.path not in ("/admin/login", "/admin/logout")
        for method in route.methods
        if method != "HEAD"
    ]
    assert len(routes) >= len(PAGES), routes
    for method, path in routes:
        url = path.replace("{name}", "x").replace("{message_id}", "x").replace("{profile_id}", "x")
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            response = bare.request(method, url, headers=headers)
            assert response.status_code == 303, (method, path)
            assert response.headers["location"].startswith("/admin/login?next="), (method, path)


def test_a_session_ends_with_a_new_password_and_cannot_be_forged(
    bare: TestClient, password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_in(bare)
    assert bare.get("/admin").status_code == 200
    session = bare.cookies[COOKIE]
    expires, _, signature = session.partition(".")
    for forged in (f"{int(expires) + 86400}.{signature}", f"{expires}.{'0' * 64}", "garbage"):
        bare.cookies.set(COOKIE, forged, path="/")
        assert bare.get("/admin").status_code == 303, forged
    bare.cookies.set(COOKIE, session, path="/")
    assert bare.get("/admin").status_code == 200
    monkeypatch.setenv(PASSWORD_VARIABLE, "a new password")
    assert bare.get("/admin").status_code == 303


# -- the pages ----------------------------------------------------------------------------------------


def test_every_page_answers_and_an_unknown_name_is_not_found(dashboard: tuple[TestClient, Shop]) -> None:
    client, shop = dashboard
    message_id = scalar(shop.engage, "SELECT min(id) FROM messages")
    cy = scalar(shop.engage, "SELECT id FROM profiles WHERE user_id = 'cy'")
    details = [
        "/admin/segments/email_users",
        "/admin/journeys/signup_welcome",
        "/admin/journeys/abandoned_cart",
        f"/admin/messages/{message_id}",
        f"/admin/conversations/{cy}",
    ]
    for path in PAGES + details:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert 'aria-current="page"' in response.text  # the nav bar marks the section
    for path in [
        "/admin/segments/nope",
        "/admin/journeys/nope",
        "/admin/messages/nope",
        "/admin/conversations/x",
    ]:
        assert client.get(path).status_code == 404, path


def test_the_overview_counts_what_the_database_holds(dashboard: tuple[TestClient, Shop]) -> None:
    client, shop = dashboard
    engage = shop.engage
    page = client.get("/admin").text
    events = scalar(engage, "SELECT count(*) FROM event_log")
    assert number(page, "events-total") == events
    assert number(page, "events-last-hour") == events  # every event arrived at the clock's "now"
    for journey in ("signup_welcome", "abandoned_cart", "post_purchase"):
        active = scalar(
            engage,
            "SELECT count(*) FROM journey_instances WHERE journey = :j AND status = 'active'",
            j=journey,
        )
        assert number(page, f"journey-active-{journey}") == active
    assert number(page, "journey-active-abandoned_cart") == 1  # ann's cart: waiting its hour
    sent = scalar(engage, "SELECT count(*) FROM messages WHERE channel = 'email' AND status = 'sent'")
    assert sent == 5  # four welcomes and bob's thanks
    assert number(page, "messages-today-email-sent") == sent
    assert number(page, "messages-today-total") == scalar(engage, "SELECT count(*) FROM messages")

    shop.clock.advance(hours=2)
    page = client.get("/admin").text
    assert number(page, "events-last-hour") == 0
    assert number(page, "events-total") == events


def test_segment_pages_show_sizes_members_and_the_definition(dashboard: tuple[TestClient, Shop]) -> None:
    client, shop = dashboard
    engage = shop.engage
    listing = client.get("/admin/segments").text
    for name in engage.segments.engine.segments:
        size = scalar(
            engage,
            "SELECT count(*) FROM segment_memberships WHERE segment = :s AND exited_at IS NULL",
            s=name,
        )
        assert number(listing, f"segment-size-{name}") == size, name
    page = client.get("/admin/segments/email_users").text
    assert number(page, "segment-size") == 4
    assert len(figures(page)["member"]) == 4
    definition = (engage.workspace.root / "segments" / "email_users.yml").read_text()
    assert html.unescape(page).count(definition.strip()) == 1
    assert "<svg" in page and "Members of email_users over time" in page


def test_journey_pages_show_the_funnel_exits_sends_and_conversions(
    dashboard: tuple[TestClient, Shop],
) -> None:
    client, shop = dashboard
    listing = figures(client.get("/admin/journeys").text)
    assert listing["journey-entered-signup_welcome"] == ["4"]
    assert listing["journey-active-post_purchase"] == ["1"]

    welcome = client.get("/admin/journeys/signup_welcome").text
    assert number(welcome, "journey-entered") == 4
    assert number(welcome, "funnel-step-0") == 4  # everyone got the welcome email
    assert number(welcome, "sends-email/welcome-sent") == 4
    assert number(welcome, "exit-completed") == 4

    shop.later(hours=1)  # ann's cart: reminded, or held out
    shop.send(track("ann", "OrderCompleted", cart_id="c-1", order_id="o-2"))
    stats = shop.engage.journeys.stats("abandoned_cart")
    cart = client.get("/admin/journeys/abandoned_cart").text
    assert number(cart, "journey-entered") == 1
    assert number(cart, "funnel-step-0") == 1 and number(cart, "funnel-step-1") == 1  # waited, then split
    assert figures(cart)["group-converted-" + stats.groups[0].name] == ["1"]
    reason = next(iter(stats.exits))
    assert number(cart, f"exit-{reason}") == 1


def test_messages_are_searched_and_each_shows_its_timeline_and_content(
    dashboard: tuple[TestClient, Shop],
) -> None:
    client, shop = dashboard
    engage = shop.engage
    everything = client.get("/admin/messages").text
    assert number(everything, "messages-total") == scalar(engage, "SELECT count(*) FROM messages")
    for query, sql in [
        ({"recipient": "ann@example.com"}, "SELECT count(*) FROM messages WHERE address = 'ann@example.com'"),
        ({"recipient": "bob"}, "SELECT count(*) FROM messages m JOIN profiles p ON p.id = m.profile_id "
                               "WHERE p.user_id = 'bob'"),
        ({"template": "email/welcome"}, "SELECT count(*) FROM messages WHERE template = 'email/welcome'"),
        ({"journey": "post_purchase", "status": "sent"}, "SELECT count(*) FROM messages WHERE template = "
                                                         "'email/post_purchase' AND status = 'sent'"),
        ({"channel": "sms"}, "SELECT count(*) FROM messages WHERE channel = 'sms'"),
    ]:  # fmt: skip
        page = client.get("/admin/messages", params=query).text
        expected = scalar(engage, sql)
        assert number(page, "messages-total") == expected, query
        assert len(figures(page).get("message-row", [])) == expected, query
    assert number(client.get("/admin/messages", params={"recipient": "bob"}).text, "messages-total") == 2

    message_id = scalar(engage, "SELECT id FROM messages WHERE address = 'ann@example.com'")
    page = client.get(f"/admin/messages/{message_id}").text
    shown = figures(page)
    assert shown["history-status"] == [status for status, _, _ in engage.messaging.history(message_id)]
    assert shown["history-status"] == ["queued", "sending", "sent"]
    record = engage.messaging.get(message_id)
    assert record is not None and record.body is not None
    assert shown["message-subject"] == [record.subject]
    (frame,) = attributes(page, "message-html")
    assert frame["sandbox"] == ""
    assert "Thanks for signing up" in (frame["srcdoc"] or "")
    assert '<base target="_blank">' in (frame["srcdoc"] or "")


def test_recommendations_show_click_through_and_the_stored_evaluations(
    dashboard: tuple[TestClient, Shop],
) -> None:
    client, shop = dashboard
    engage = shop.engage
    page = client.get("/admin/recommendations").text
    log = logged(engage)
    exposures = {e.properties["recommendation_id"]: e for e in log if e.event == "RecommendationShown"}
    expected: dict[str, list[int]] = {}
    for event in exposures.values():
        expected.setdefault(f"{event.channel}-{event.properties['use_case']}", [0, 0, 0])[0] += 1
    lists: dict[str, set[str]] = {}
    for event in (e for e in log if e.event == "RecommendationClicked"):
        exposure = exposures.get(event.properties["recommendation_id"])
        key = (
            f"{exposure.channel}-{exposure.properties['use_case']}"
            if exposure
            else f"{event.channel}-unknown"
        )
        expected.setdefault(key, [0, 0, 0])[1] += 1
        lists.setdefault(key, set()).add(event.properties["recommendation_id"])
    for key, found in lists.items():
        expected[key][2] = len(found)
    assert expected == {
        "chat-for_you": [1, 2, 1],
        "email-for_you": [1, 1, 1],
        "chat-related": [1, 0, 0],
        "sms-unknown": [0, 1, 1],
    }
    for key, (shown, clicks, clicked) in expected.items():
        assert number(page, f"ctr-shown-{key}") == shown
        assert number(page, f"ctr-clicks-{key}") == clicks
        assert number(page, f"ctr-clicked-{key}") == clicked
    assert figures(page)["ctr-rate-chat-for_you"] == ["100.0%"]
    assert figures(page)["ctr-rate-chat-related"] == ["0.0%"]
    assert "engage recs evaluate" in figures(page)["no-evaluations"][0]

    metrics = {metric: 0.1 + n / 100 for n, metric in enumerate(METRICS)}
    results = (
        ModelResult("popularity", metrics, 0.01, 0.02),
        ModelResult("itemknn", {**metrics, "precision_at_10": 0.5}, 0.1, 0.2),
    )
    evaluation = Evaluation("workspace", "personalize", 0, True, 40, 30, 900, 32, 800, 8, 0, 0, results)
    write_report(evaluation, engage.workspace.var_dir / "evaluations")
    page = client.get("/admin/recommendations").text
    shown = figures(page)
    assert shown["evaluation-workspace-personalize-itemknn-precision_at_10"] == ["0.5000"]
    assert shown["evaluation-workspace-personalize-popularity-coverage"] == [f"{metrics['coverage']:.4f}"]
    assert "no-evaluations" not in shown
    assert "itemknn, P@10: 0.5000" in page  # the chart's bar


def test_conversations_show_each_turn_with_its_intent(dashboard: tuple[TestClient, Shop]) -> None:
    client, shop = dashboard
    engage = shop.engage
    listing = client.get("/admin/conversations").text
    assert number(listing, "conversations-total") == scalar(
        engage,
        "SELECT count(DISTINCT profile_id) FROM event_log WHERE event IN ('ChatMessage', 'ChatReplied')",
    )
    cy = scalar(engage, "SELECT id FROM profiles WHERE user_id = 'cy'")
    assert number(listing, f"conversation-customer-turns-{cy}") == 1
    assert number(listing, f"conversation-bot-turns-{cy}") == 1
    transcript = figures(client.get(f"/admin/conversations/{cy}").text)
    assert transcript["turn-text"] == ["something for the kitchen"]
    assert transcript["turn-intent"] == ["recommend"]
    assert transcript["turn-confidence"] == ["0.93"]
    assert transcript["turn-bot"][0].startswith("Here are a few ideas")

    dee = scalar(engage, "SELECT id FROM profiles WHERE user_id = 'dee'")
    shown = figures(client.get(f"/admin/conversations/{dee}").text)  # lists shown in the chat, and clicks
    first = next(iter(engage.recommend.catalog))
    assert len(shown["turn-shown"]) == 2  # r1 and r3 (r2 was an email's)
    assert shown["shown-item"][0] == f"{first.name} ({first.id})"
    assert len(shown["turn-clicked"]) == 3  # r1 twice, and r9 (by SMS, a list engage has no record of)
