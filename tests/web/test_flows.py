"""The admin web app in Debian's Chromium against a real control plane: the main flow, roles,
languages, deep links, and that the app runs under its Content-Security-Policy."""

from __future__ import annotations

import json
import re

from playwright.sync_api import Browser, Page, expect

from tests.control.helpers import PASSWORD
from tests.web.api import ApiUser, add_member, owner_with_service
from tests.web.conftest import Console, new_context
from tests.web.server import ControlPlane


def sign_in(page: Page, email: str) -> None:
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def assert_clean(page: Page, console: Console) -> None:
    """No CSP violation, no uncaught error, no secret in storage a script could read."""
    assert console.errors == []
    storage = page.evaluate("JSON.stringify({...localStorage, ...sessionStorage})")
    assert "csrf" not in storage.lower() and "token" not in storage.lower(), storage
    assert "kokoa_session" not in page.evaluate("document.cookie")  # HttpOnly


def test_sign_up_create_disable_and_audit(
    page: Page, server: ControlPlane, console: Console
) -> None:
    response = page.goto("/")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp
    expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("E-mail address").fill("owner@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organisation name").fill("Acme")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme: dashboard")

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Services").click()
    expect(page.get_by_text("No services yet")).to_be_visible()
    page.get_by_role("link", name="New service").click()
    page.get_by_label("Name", exact=True).fill("web")
    page.get_by_label("Host name").fill("not a host name")
    page.get_by_label("Origin", exact=True).fill("http://127.0.0.1:3000")
    page.get_by_role("button", name="Create service").click()
    # The problem+json answer is shown: a title, the detail, and the field's own message.
    expect(page.get_by_role("alert")).to_contain_text("Please check the form")
    expect(page.get_by_role("alert")).to_contain_text("hostname")
    expect(page.get_by_label("Host name")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Host name").fill("app.example.com")
    page.get_by_role("button", name="Create service").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("web")

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Services").click()
    row = page.get_by_role("row").filter(has_text="app.example.com")
    expect(row).to_contain_text("Enabled")
    row.get_by_role("button", name="Disable web").click()
    expect(row).to_contain_text("Disabled")
    expect(page.get_by_role("status").filter(has_text="web was disabled.")).to_be_visible()

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Audit log").click()
    table = page.get_by_role("table", name="Audit log")
    expect(table.get_by_role("row").filter(has_text="service.disable")).to_contain_text("web")
    expect(table.get_by_role("row").filter(has_text="service.create")).to_contain_text("web")
    # Newest first: the disable above the create.
    actions = table.locator("tbody code").all_inner_texts()
    assert actions.index("service.disable") < actions.index("service.create")
    page.get_by_label("Action").fill("service.*")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"action=service\.\*"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    csv = download.value.path().read_text()
    assert "service.disable" in csv and "service.create" in csv and "member.add" not in csv
    assert_clean(page, console)


def test_viewer_sees_no_mutations_and_the_api_refuses_them(
    browser: Browser, server: ControlPlane
) -> None:
    owner, org, service = owner_with_service(server.url)
    add_member(owner, org, "viewer", "viewer@example.com").close()
    context = new_context(browser, server)
    page = context.new_page()
    console = Console()
    page.on("console", console.record)
    try:
        page.goto(f"/orgs/{org}/services")
        sign_in(page, "viewer@example.com")
        expect(page.get_by_role("link", name="web", exact=True)).to_be_visible()
        expect(page.get_by_text("Your role: Viewer")).to_be_visible()
        for name in ("New service", "Edit web"):
            expect(page.get_by_role("link", name=name)).to_have_count(0)
        for name in ("Disable web", "Delete web"):
            expect(page.get_by_role("button", name=name)).to_have_count(0)
        nav = page.get_by_role("navigation", name="Sections")
        expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
        expect(nav.get_by_role("link", name="Service accounts")).to_have_count(0)
        page.get_by_role("link", name="web", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("web")
        expect(page.get_by_role("button")).not_to_contain_text(["Disable", "Delete", "Edit"])
        page.goto(f"/orgs/{org}/services/new")
        expect(page.get_by_text("does not allow this")).to_be_visible()

        # The API refuses anyway: a valid session and CSRF token, but the viewer role.
        disable = f"/api/v1/orgs/{org}/services/{service['id']}/disable"
        result = page.evaluate(
            """async (url) => {
                const session = await (await fetch('/api/v1/auth/session')).json()
                const withToken = await fetch(url, {method: 'POST',
                    headers: {'X-CSRF-Token': session.csrf_token}})
                const without = await fetch(url, {method: 'POST'})
                return [withToken.status, await withToken.json(), without.status,
                        await without.json()]
            }""",
            disable,
        )
        assert result[0] == 403 and result[1]["type"] == "urn:kokoa:problem:forbidden"
        assert result[2] == 403 and result[3]["type"] == "urn:kokoa:problem:csrf-failed"
        assert owner.call("GET", f"/orgs/{org}/services/{service['id']}", 200)["enabled"] is True
        assert console.errors == []
    finally:
        owner.close()
        context.close()


def test_language_follows_the_browser_and_the_switch(
    browser: Browser, server: ControlPlane
) -> None:
    context = new_context(browser, server, locale="ja-JP")
    page = context.new_page()
    try:
        page.goto("/signin")
        expect(page.get_by_role("heading", level=1)).to_have_text("サインイン")
        expect(page.locator("html")).to_have_attribute("lang", "ja")
        expect(page.get_by_label("メールアドレス")).to_be_visible()
        page.get_by_label("言語").select_option("en")
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.reload()  # the choice is remembered (the only thing kept in localStorage)
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
        page.get_by_label("Language").select_option("ja")
        expect(page.get_by_role("heading", level=1)).to_have_text("サインイン")
        # A server error in Japanese: the title translated, the server's detail kept.
        page.get_by_label("メールアドレス").fill("nobody@example.com")
        page.get_by_label("パスワード").fill("wrong password here")
        page.get_by_role("button", name="サインイン").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "メールアドレスまたはパスワードが違います"
        )
    finally:
        context.close()


def test_deep_links_reloads_and_history(page: Page, server: ControlPlane, console: Console) -> None:
    owner, org, service = owner_with_service(server.url)
    owner.close()
    deep = f"/orgs/{org}/services/{service['id']}"
    page.goto(deep)
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    sign_in(page, "owner@example.com")
    expect(page).to_have_url(re.compile(re.escape(deep) + "$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("web")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("web")
    # Mutations still work after a reload: the CSRF token came back from /auth/session.
    page.get_by_role("button", name="Disable web").click()
    expect(page.locator(".details")).to_contain_text("Disabled")

    page.goto(f"/orgs/{org}/services?q=web&enabled=disabled")
    expect(page.get_by_label("Search")).to_have_value("web")
    expect(page.get_by_label("Show")).to_have_value("disabled")
    expect(page.get_by_role("link", name="web", exact=True)).to_be_visible()
    page.get_by_label("Show").select_option("enabled")
    expect(page.get_by_text("No service matches these filters")).to_be_visible()
    expect(page).to_have_url(re.compile(r"enabled=enabled"))
    page.reload()
    expect(page.get_by_label("Show")).to_have_value("enabled")

    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    page.go_back()
    expect(page.get_by_label("Show")).to_have_value("enabled")

    page.goto(f"/orgs/{org}/no-such-page")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    page.goto(f"/orgs/{org}/services/00000000-0000-0000-0000-000000000000")
    expect(page.get_by_role("alert")).to_contain_text("Not found")
    assert_clean(page, console)


def test_phone_width_keyboard_and_labels(
    page: Page, server: ControlPlane, console: Console
) -> None:
    owner, org, _ = owner_with_service(server.url)
    owner.close()
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/signin")
    # Rendered first (the page's own heading), then the first Tab of a fresh page load
    # reaches the skip link: the app moves focus to the heading only when it navigates.
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    sign_in(page, "owner@example.com")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme: dashboard")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    nav_link = page.get_by_role("navigation", name="Sections").get_by_role("link", name="Members")
    expect(nav_link).to_be_hidden()
    menu.click()
    nav_link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Members")
    expect(page.get_by_role("heading", level=1)).to_be_focused()  # announced after navigating
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    for path in (f"/orgs/{org}/services/new", f"/orgs/{org}/members", "/profile"):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([hidden]), select, textarea')]
                .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
                .map(el => el.outerHTML)"""
        )
        assert unlabelled == [], (path, unlabelled)
    assert console.errors == [], json.dumps(console.errors)


HIDE = """(state) => {
    Object.defineProperty(document, 'visibilityState', {value: state, configurable: true})
    document.dispatchEvent(new Event('visibilitychange'))
}"""


def test_live_updates_pause_while_hidden(page: Page, server: ControlPlane) -> None:
    owner, org, _ = owner_with_service(server.url)
    try:
        watch_services(page, owner, org)
    finally:
        owner.close()


def watch_services(page: Page, owner: ApiUser, org: str) -> None:
    page.goto(f"/orgs/{org}/services")
    sign_in(page, "owner@example.com")
    expect(page.get_by_role("link", name="web", exact=True)).to_be_visible()

    def add(name: str) -> None:
        body = {"name": name, "hostname": f"{name}.example.com", "origin": "http://127.0.0.1:1"}
        owner.call("POST", f"/orgs/{org}/services", 201, json=body)

    add("second")  # appears by polling, without a reload
    expect(page.get_by_role("link", name="second", exact=True)).to_be_visible(timeout=8000)

    page.evaluate(HIDE, "hidden")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/services?" in r.url else None)
    add("third")
    page.wait_for_timeout(6500)  # longer than the 5 s interval
    assert polls == []
    expect(page.get_by_role("link", name="third", exact=True)).to_have_count(0)

    page.evaluate(HIDE, "visible")  # looking again refreshes at once
    expect(page.get_by_role("link", name="third", exact=True)).to_be_visible(timeout=2000)
