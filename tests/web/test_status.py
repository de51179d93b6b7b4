"""Status in the browser, fed through the real control channel: an ingress node and an edge
agent enrolled through the API report over WebSocket (tests/web/channel.py) while Chromium
shows the dashboard's counts, alerts and traffic charts, the agent's node connection with
its RTT, the readiness check (set by an admin, read-only for a viewer), status changes on the
monitoring page as they happen, and what disabling an agent does to its certificates."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.web.api import ApiUser, add_member
from tests.web.channel import Peer, Reporter, enrolled
from tests.web.conftest import Console, new_context
from tests.web.server import ControlPlane
from tests.web.test_flows import assert_clean, sign_in

CERT_PROBLEM = "the tunnel certificate expires in 20 h and is not renewed"
READYZ = "http://127.0.0.1:9/readyz"  # nothing listens: the check fails, harmlessly


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=name).click()


def test_status_from_the_control_channel(
    page: Page, browser: Browser, server: ControlPlane, console: Console
) -> None:
    owner = ApiUser(server.url)
    owner.signup("owner@example.com", organisation_name="Acme")
    org = owner.first_org()
    node = owner.call(
        "POST",
        f"/orgs/{org}/nodes",
        201,
        json={
            "name": "tokyo-1",
            "public_address": "203.0.113.7:443",
            "tunnel_address": "203.0.113.7:7844",
        },
    )
    agent = owner.call("POST", f"/orgs/{org}/agents", 201, json={"name": "home"})
    body = {"name": "web", "hostname": "app.example.com", "origin": "http://127.0.0.1:3000"}
    owner.call("POST", f"/orgs/{org}/services", 201, json=body | {"agent_ids": [agent["id"]]})
    viewer = add_member(owner, org, "viewer", "viewer@example.com")
    viewer.close()
    node_reporter = Reporter(
        server.url,
        enrolled(owner, org, "ingress", node),
        services=["web"],
        peers=[Peer("agent", agent["id"], "home", 3.5)],
    )
    agent_reporter = Reporter(
        server.url,
        enrolled(owner, org, "agent", agent),
        services=["web"],
        peers=[Peer("ingress", node["id"], "tokyo-1", 12.5)],
        problems=[CERT_PROBLEM],
    )
    owner.close()
    with node_reporter, agent_reporter:
        page.goto("/signin")
        sign_in(page, "owner@example.com")
        dashboard(page)
        agents_page(page)
        node_page(page)
        monitoring(page, node_reporter)
        disable_agent(page, agent_reporter)
    viewer_sees_the_check(browser, server, node["id"], org)
    assert_clean(page, console)


def dashboard(page: Page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme: dashboard")
    nodes = page.get_by_role("list", name="Ingress nodes by status")
    expect(nodes.get_by_role("listitem").filter(has_text="Online")).to_have_text(
        re.compile(r"Online\s*1")
    )
    agents = page.get_by_role("list", name="Edge agents by status")
    expect(agents.get_by_role("listitem").filter(has_text="Degraded")).to_have_text(
        re.compile(r"Degraded\s*1")
    )
    expect(agents.get_by_role("listitem").filter(has_text="Online")).to_have_text(
        re.compile(r"Online\s*0")
    )
    # The agent's certificate problem is an alert, marked as such.
    alert = page.locator(".alerts li").filter(has_text="home")
    expect(alert).to_contain_text("Certificate")
    expect(alert).to_contain_text(CERT_PROBLEM)
    # A chart with data: the service's line, named with its latest rate, and its totals.
    chart = page.get_by_role(
        "img", name=re.compile(r"^Requests per second — By service\. Latest: web ")
    )
    expect(chart).to_be_visible()
    expect(chart.locator("polyline").first).to_have_attribute("points", re.compile(r"\d+,\d"))
    legend = page.get_by_role("table", name="Requests per second — By service")
    expect(legend.get_by_role("row").filter(has_text="web")).to_contain_text(
        re.compile(r"[1-9]\d*$")
    )
    by_node = page.get_by_role("table", name="Bandwidth sent — By ingress node")
    expect(by_node.get_by_role("row").filter(has_text="tokyo-1")).to_contain_text(
        re.compile(r"[kM]B$")
    )
    changes = page.get_by_role("table", name="Recent status changes")
    expect(changes.get_by_role("row").filter(has_text="tokyo-1")).to_contain_text(
        "Unknown to Online"
    )


def agents_page(page: Page) -> None:
    nav(page, "Edge agents")
    row = page.get_by_role("row").filter(has_text="home")
    expect(row.get_by_role("link", name="tokyo-1")).to_be_visible()
    expect(row).to_contain_text("12.5 ms")
    expect(row).to_contain_text("Degraded")


def node_page(page: Page) -> None:
    nav(page, "Ingress nodes")
    row = page.get_by_role("row").filter(has_text="tokyo-1")
    expect(row).to_contain_text("Online")
    expect(row).to_contain_text("kokoa 2.0.0-test")
    row.get_by_role("link", name="tokyo-1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("tokyo-1")
    connected = page.get_by_role("table", name="Connected edge agents")
    expect(connected.get_by_role("row").filter(has_text="home")).to_contain_text("3.5 ms")
    expect(connected).to_contain_text("both sides")
    section = page.get_by_role("region", name="Readiness check")
    expect(section).to_contain_text("judged by its heartbeats alone")
    section.get_by_label("Readiness URL").fill(READYZ)
    section.get_by_role("button", name="Check this URL").click()
    expect(
        page.get_by_role("status").filter(has_text="readiness check of tokyo-1 was saved")
    ).to_be_visible()
    expect(section.locator("dl")).to_contain_text(READYZ)
    expect(section.get_by_role("button", name="Remove check")).to_be_visible()


def monitoring(page: Page, node_reporter: Reporter) -> None:
    nav(page, "Monitoring")
    expect(page.get_by_role("heading", level=1)).to_have_text("Monitoring")
    table = page.get_by_role("table", name="Status changes")
    expect(table.get_by_role("row").filter(has_text="tokyo-1")).to_contain_text("Unknown to Online")
    expect(table.get_by_role("row").filter(has_text="home")).to_contain_text("Unknown to Degraded")
    # The node's channel closes: offline at once, and the page shows it by polling.
    node_reporter.stop()
    went_offline = table.get_by_role("row").filter(has_text="Online to Offline")
    expect(went_offline).to_contain_text("tokyo-1", timeout=8000)
    page.get_by_label("Node or agent").select_option(label="home")
    expect(page).to_have_url(re.compile(r"\?subject=[0-9a-f-]{36}$"))
    expect(table.get_by_role("row").filter(has_text="tokyo-1")).to_have_count(0)
    expect(table.get_by_role("row").filter(has_text="home")).to_have_count(1)
    expect(page.get_by_role("link", name="All its events in the audit log")).to_be_visible()


def disable_agent(page: Page, agent_reporter: Reporter) -> None:
    nav(page, "Edge agents")
    page.get_by_role("button", name="Disable home").click()
    dialog = page.get_by_role("dialog", name="Disable home?")
    expect(dialog).to_contain_text("certificates are revoked")
    expect(dialog).to_contain_text("enrolled again with a new enrollment token")
    dialog.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status").filter(has_text="home was disabled.")).to_be_visible()
    # The revocation closes its channel (4403).
    assert agent_reporter.closed.wait(5), "the disabled agent's channel stayed open"


def viewer_sees_the_check(browser: Browser, server: ControlPlane, node_id: str, org: str) -> None:
    context = new_context(browser, server)
    page = context.new_page()
    console = Console()
    page.on("console", console.record)
    try:
        page.goto(f"/orgs/{org}/nodes/{node_id}")
        sign_in(page, "viewer@example.com")
        section = page.get_by_role("region", name="Readiness check")
        expect(section.locator("dl")).to_contain_text(READYZ)
        expect(section.get_by_role("button")).to_have_count(0)
        expect(section.get_by_role("textbox")).to_have_count(0)
        expect(page.get_by_role("button", name="Disable tokyo-1")).to_have_count(0)
        assert console.errors == []
    finally:
        context.close()
