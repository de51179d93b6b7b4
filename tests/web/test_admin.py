"""The administration pages in the browser: ingress nodes and edge agents with their enrollment
commands, a service served by an agent, an invitation accepted in a second browser, service
accounts, and the profile (tokens, sessions, a password change that keeps mutations working)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.control.helpers import PASSWORD
from tests.web.api import ApiUser
from tests.web.conftest import Console, new_context
from tests.web.server import ControlPlane
from tests.web.test_flows import assert_clean, sign_in

NEW_PASSWORD = "another long passphrase 42"


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile(name, re.I))


def secret(page: Page, label: str) -> str:
    return page.get_by_role("region", name=label).locator("code").inner_text()


def add_node_and_agent(page: Page) -> None:
    nav(page, "Ingress nodes")
    expect(page.get_by_text("No ingress nodes yet")).to_be_visible()
    page.get_by_role("link", name="Add ingress node").click()
    page.get_by_label("Name", exact=True).fill("tokyo-1")
    page.get_by_label("Public address").fill("203.0.113.7:443")
    page.get_by_label("Tunnel address").fill("203.0.113.7:7844")
    page.get_by_label("Region").fill("tokyo")
    page.get_by_label("Labels").fill("region=tokyo\ntier=edge")
    page.get_by_role("button", name="Add node").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("tokyo-1 was added")
    command = secret(page, "Enrollment command")
    assert re.match(
        r"kokoa ingress run --config FILE --control http://127\.0\.0\.1:\d+ --token \S+$", command
    )
    page.get_by_role("link", name="Open tokyo-1").click()
    expect(page.locator(".details")).to_contain_text("Unknown")
    expect(page.locator(".details")).to_contain_text("region=tokyo")
    tokens = page.get_by_role("table", name="Enrollment tokens")
    expect(tokens).to_contain_text("Not used yet")
    tokens.get_by_role("button", name=re.compile("^Revoke ")).click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(tokens).to_contain_text("Revoked")

    nav(page, "Edge agents")
    page.get_by_role("link", name="Add edge agent").click()
    page.get_by_label("Name", exact=True).fill("home")
    page.get_by_label("Ingress nodes to use").select_option("labels")
    page.get_by_label("Node labels to match").fill("region=tokyo")
    page.get_by_role("button", name="Add agent").click()
    assert secret(page, "Enrollment command").startswith("kokoa edge run --config FILE")


def service_on_agent(page: Page) -> None:
    nav(page, "Services")
    page.get_by_role("link", name="New service").click()
    page.get_by_label("Name", exact=True).fill("blog")
    page.get_by_label("Host name").fill("blog.example.com")
    page.get_by_label("Origin", exact=True).fill("http://127.0.0.1:8080")
    page.get_by_label("home").check()
    page.get_by_role("button", name="Create service").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("blog")
    page.get_by_role("link", name="home").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("home")
    expect(page.locator(".details")).to_contain_text("blog")


def invite_operator(page: Page, browser: Browser, server: ControlPlane) -> None:
    nav(page, "Members")
    page.get_by_label("Role", exact=True).select_option("operator")
    page.get_by_role("button", name="Create invitation link").click()
    link = secret(page, "Invitation link")
    assert link.startswith(f"{server.url}/accept-invitation#token=")
    expect(page.locator("li").filter(has_text="Operator · anyone with the link")).to_be_visible()
    other = new_context(browser, server)
    try:
        invitee = other.new_page()
        invitee.goto(link)
        invitee.get_by_label("E-mail address").fill("operator@example.com")
        invitee.get_by_label("Password").fill(PASSWORD)
        invitee.get_by_role("button", name="Create account").click()
        expect(invitee.get_by_role("heading", level=1)).to_have_text("Acme: dashboard")
        expect(invitee.get_by_text("Your role: Operator")).to_be_visible()
    finally:
        other.close()
    page.reload()
    expect(page.get_by_role("row").filter(has_text="operator@example.com")).to_be_visible()


def service_account(page: Page) -> None:
    nav(page, "Service accounts")
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("Role").select_option("operator")
    page.get_by_role("button", name="Create token").click()
    assert secret(page, "Token ci").startswith("kokoa_sat_")
    row = page.get_by_role("row").filter(has_text="ci")
    row.get_by_role("button", name="Revoke ci").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("Revoked")


def profile(page: Page) -> None:
    page.get_by_role("link", name="owner@example.com").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your profile")
    expect(page.get_by_text("This browser")).to_be_visible()
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status").filter(has_text="Your password was changed.")).to_be_visible()
    # The session has a new id and CSRF token now: a mutation right after must still work.
    form = page.get_by_role("form", name="New token")
    form.get_by_label("Name").fill("laptop")
    form.get_by_role("button", name="Create token").click()
    assert secret(page, "Token laptop").startswith("kokoa_pat_")


def test_administration_pages(
    page: Page, browser: Browser, server: ControlPlane, console: Console
) -> None:
    owner = ApiUser(server.url)
    owner.signup("owner@example.com", organisation_name="Acme")
    owner.close()
    page.goto("/signin")
    sign_in(page, "owner@example.com")
    add_node_and_agent(page)
    service_on_agent(page)
    invite_operator(page, browser, server)
    service_account(page)
    profile(page)
    nav(page, "Dashboard")
    expect(page.locator(".cards")).to_contain_text("tokyo-1")
    expect(page.locator(".cards")).to_contain_text("home")
    rename_organisation(page)
    switch_organisations(page)
    assert_clean(page, console)


def rename_organisation(page: Page) -> None:
    nav(page, "Members")
    page.get_by_label("Organisation name").fill("Acme Corp")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("banner").get_by_label("Organisation")).to_contain_text("Acme Corp")


def switch_organisations(page: Page) -> None:
    switcher = page.get_by_role("banner").get_by_label("Organisation")
    switcher.select_option(label="+ New organisation")
    page.get_by_label("Organisation name").fill("Beta")
    page.get_by_role("button", name="Create organisation").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Beta: dashboard")
    nav(page, "Services")
    expect(page.get_by_text("No services yet")).to_be_visible()
    switcher.select_option(label="Acme Corp")  # same section, other organisation
    expect(page.get_by_role("link", name="blog", exact=True)).to_be_visible()
