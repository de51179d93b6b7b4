"""Sign-in with OpenID Connect in Chromium: the button on the sign-in page, the real provider's
login and consent forms (panva's oidc-provider), and back in the app, signed in; linking the
provider from the profile, and unlinking it; a refused sign-in comes back to the sign-in page with
its message."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.oidc.fixture import running_provider
from tests.web.api import ApiUser
from tests.web.conftest import Console, new_context
from tests.web.server import ControlPlane, control_plane
from tests.web.test_flows import sign_in


@pytest.fixture
def server(template: Path, tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane with the test provider configured (its callback registered there)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    callback = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1/auth/oidc/test/callback"
    with (
        running_provider([callback]) as provider,
        control_plane(template, tmp_path, sock, oidc_providers=[provider.setting()]) as plane,
    ):
        yield plane


def no_web_fonts(context: BrowserContext) -> None:
    """The provider's development pages import a web font; offline, answer with nothing."""
    context.route(
        re.compile(r"^https://fonts\.googleapis\.com/"),
        lambda route: route.fulfill(status=200, content_type="text/css", body=""),
    )


def sign_in_at_provider(page: Page, login: str) -> None:
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()
    page.get_by_role("button", name="Continue").click()  # the consent form


def test_sign_in_with_the_provider(
    page: Page, browser: Browser, server: ControlPlane, console: Console
) -> None:
    owner = ApiUser(server.url)
    owner.signup("owner@example.com", organisation_name="Acme")
    org = owner.first_org()
    owner.call(
        "POST", f"/orgs/{org}/invitations", 201, json={"role": "viewer", "email": "new@example.com"}
    )
    owner.close()

    no_web_fonts(page.context)
    # An account with a password is not opened by the provider's word for its address …
    page.goto("/signin")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    sign_in_at_provider(page, "owner@example.com")
    expect(page).to_have_url(re.compile(r"/signin\?oidc_error=link_required"))
    expect(page.get_by_role("alert")).to_contain_text("Sign in with the password, then link")
    # … its user signs in with the password and links the provider from the profile (the
    # provider, still signed in and consented, sends the browser straight back).
    sign_in(page, "owner@example.com")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme: dashboard")
    page.goto("/profile")
    page.get_by_role("button", name="Link Test IdP").click()
    expect(page).to_have_url(f"{server.url}/profile?oidc_linked=test")
    expect(page.get_by_role("status").filter(has_text="Test IdP is linked")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Linked \(owner@example\.com\) since"))).to_be_visible()
    assert console.errors == []

    # Another browser: a deep link, the provider, back there signed in.
    context = new_context(browser, server)
    no_web_fonts(context)
    other = context.new_page()
    other.goto(f"/orgs/{org}/services")
    expect(other).to_have_url(re.compile(r"/signin\?next="))
    button = other.get_by_role("link", name="Sign in with Test IdP")
    expect(button).to_have_attribute("href", re.compile(r"^/api/v1/auth/oidc/test/login\?next="))
    button.click()
    sign_in_at_provider(other, "owner@example.com")
    # Back where the app sent us to sign in, signed in (the session cookie, no token in JS).
    expect(other).to_have_url(f"{server.url}/orgs/{org}/services")
    expect(other.get_by_role("heading", level=1)).to_have_text("Services")
    other.reload()
    expect(other.get_by_role("heading", level=1)).to_have_text("Services")
    assert "kokoa_session" not in other.evaluate("document.cookie")
    context.close()

    # Someone the control plane does not know: back on the sign-in page with the reason.
    context = new_context(browser, server, locale="ja-JP")
    no_web_fonts(context)
    stranger = context.new_page()
    stranger.goto("/signin")
    stranger.get_by_role("link", name="Test IdP でサインイン").click()
    sign_in_at_provider(stranger, "stranger")
    expect(stranger).to_have_url(re.compile(r"/signin\?oidc_error=unknown_user"))
    expect(stranger.get_by_role("alert")).to_have_text(re.compile("アカウントがありません"))
    context.close()

    # Back in the first browser, the owner unlinks the provider (after confirming): the Link
    # button is back.
    page.get_by_role("button", name="Unlink Test IdP").click()
    dialog = page.get_by_role("dialog", name="Unlink Test IdP?")
    expect(dialog).to_contain_text("The link between your account and Test IdP is removed")
    dialog.get_by_role("button", name="Unlink").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Link Test IdP")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Linked \(owner@example\.com\)"))).to_have_count(0)
    assert console.errors == []

    # An account made through the provider has no password: its only link is not removed, and
    # the dialog says why.
    context = new_context(browser, server)
    no_web_fonts(context)
    newcomer = context.new_page()
    newcomer.goto("/signin")
    newcomer.get_by_role("link", name="Sign in with Test IdP").click()
    sign_in_at_provider(newcomer, "new")
    newcomer.goto("/profile")
    newcomer.get_by_role("button", name="Unlink Test IdP").click()
    dialog = newcomer.get_by_role("dialog", name="Unlink Test IdP?")
    dialog.get_by_role("button", name="Unlink").click()
    expect(dialog.get_by_role("alert")).to_contain_text("only way to sign in")
    dialog.get_by_role("button", name="Cancel").click()
    expect(newcomer.get_by_text(re.compile(r"Linked \(new@example\.com\) since"))).to_be_visible()
    context.close()
