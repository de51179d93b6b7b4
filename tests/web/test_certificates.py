"""The certificates page in the browser: an operator uploads a public (HTTPS) certificate by
pasting its chain (a mismatched key first, refused on the key field, then the right key read
from a file), sees it in the list with its names and expiry and the services it serves,
replaces it with one that expires soon (the dashboard's alert), and deletes it; a viewer sees
the list and the detail without any upload, replace or delete control."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, FilePayload, Page, expect

from tests.control.certificates_support import TestCA, key_pem
from tests.web.api import add_member, owner_with_service
from tests.web.conftest import Console, new_context
from tests.web.server import ControlPlane
from tests.web.test_admin import nav
from tests.web.test_flows import assert_clean, sign_in


def upload(page: Page, ca: TestCA) -> None:
    nav(page, "Certificates")
    expect(page.get_by_text("No certificates yet")).to_be_visible()
    page.get_by_role("link", name="Upload certificate").click()
    issued = ca.issue("app.example.com", "www.example.com")
    chain = page.get_by_label("Certificate chain (PEM)")
    key = page.get_by_label("Private key (PEM)")
    assert key.get_attribute("autocomplete") == "off"
    assert key.get_attribute("spellcheck") == "false"
    chain.fill(issued.chain)
    key.fill(key_pem(ec.generate_private_key(ec.SECP256R1())))  # another key
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(key).to_have_accessible_description(
        re.compile(r"does not match the server's certificate \(app\.example\.com\)")
    )
    expect(key).to_have_attribute("aria-invalid", "true")
    expect(chain).not_to_have_attribute("aria-invalid", "true")
    expect(key).to_have_value("")  # not kept after sending, even when refused
    expect(chain).to_have_value(issued.chain)
    key_file = FilePayload(name="key.pem", mimeType="text/plain", buffer=issued.key.encode())
    page.get_by_label("Read the private key from a file").set_input_files(key_file)
    expect(key).to_have_value(issued.key)
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("app.example.com")
    details = page.locator(".details")
    expect(details).to_contain_text("Expires in 89 days")
    expect(details).to_contain_text("www.example.com")
    expect(details.get_by_role("link", name="web (app.example.com)")).to_be_visible()
    expect(page.locator("pre")).to_contain_text("-----BEGIN CERTIFICATE-----")
    expect(page.locator("body")).not_to_contain_text("PRIVATE KEY")

    nav(page, "Certificates")
    row = page.get_by_role("row").filter(has_text="app.example.com")
    expect(row).to_contain_text("www.example.com")
    expect(row).to_contain_text("Kokoa Test Root")
    expect(row).to_contain_text("Expires in 89 days")
    page.get_by_label("Expiry", exact=True).select_option("attention")
    expect(page.get_by_text("No certificate matches these filters")).to_be_visible()
    expect(page).to_have_url(re.compile(r"\?expiry=attention$"))
    page.get_by_label("Expiry", exact=True).select_option("all")
    expect(row).to_be_visible()


def replace_with_one_expiring_soon(page: Page, ca: TestCA) -> None:
    page.get_by_role("link", name="Replace app.example.com").click()
    renewed = ca.issue("app.example.com", not_after=datetime.now(UTC) + timedelta(days=10))
    page.get_by_label("Certificate chain (PEM)").fill(renewed.chain)
    page.get_by_label("Private key (PEM)").fill(renewed.key)
    page.get_by_role("button", name="Replace certificate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("app.example.com")
    expect(page.locator(".details")).to_contain_text("Expires soon: in 9 days")
    expect(page.locator(".details")).not_to_contain_text("www.example.com")
    activity = page.get_by_role("table", name="Recent activity")
    expect(activity).to_contain_text("HTTPS certificate replaced")
    expect(activity).to_contain_text("HTTPS certificate uploaded")
    nav(page, "Dashboard")
    alert = page.locator(".alert-item").filter(has_text="HTTPS certificate")
    expect(alert).to_contain_text("Expires soon: in 9 days")
    expect(alert.get_by_role("link", name="app.example.com", exact=True)).to_be_visible()


def viewer_sees_no_mutations(browser: Browser, server: ControlPlane, org: str) -> None:
    context = new_context(browser, server)
    console = Console()
    try:
        page = context.new_page()
        page.on("console", console.record)
        page.goto(f"/orgs/{org}/certificates")
        sign_in(page, "viewer@example.com")
        expect(page.get_by_role("link", name="app.example.com", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="Upload certificate")).to_have_count(0)
        expect(page.get_by_role("link", name="Replace app.example.com")).to_have_count(0)
        expect(page.get_by_role("button", name="Delete app.example.com")).to_have_count(0)
        page.get_by_role("link", name="app.example.com", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("app.example.com")
        expect(page.locator(".page-actions")).to_have_count(0)
        page.goto(f"/orgs/{org}/certificates/new")
        expect(page.get_by_text("does not allow this")).to_be_visible()
        assert console.errors == []
    finally:
        context.close()


def delete(page: Page) -> None:
    nav(page, "Certificates")
    page.get_by_role("link", name="app.example.com", exact=True).click()
    page.get_by_role("button", name="Delete app.example.com").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Ingress nodes stop serving it")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Certificates")
    expect(page.get_by_text("No certificates yet")).to_be_visible()


def test_certificates_page(
    page: Page, browser: Browser, server: ControlPlane, console: Console
) -> None:
    owner, org, _ = owner_with_service(server.url)
    add_member(owner, org, "operator", "operator@example.com").close()
    add_member(owner, org, "viewer", "viewer@example.com").close()
    owner.close()
    ca = TestCA()
    page.goto("/signin")
    sign_in(page, "operator@example.com")
    expect(page.get_by_text("Your role: Operator")).to_be_visible()
    upload(page, ca)
    replace_with_one_expiring_soon(page, ca)
    viewer_sees_no_mutations(browser, server, org)
    delete(page)
    assert_clean(page, console)
