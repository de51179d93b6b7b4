"""Where a sign-in with an OpenID provider may land (`next`): a path of ours, else "/" — never
another site, however the browser would read the URL (docs/control-plane.md)."""

from __future__ import annotations

import pytest

from control.api.routes.oidc import MAX_NEXT, safe_next


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "//evil.example/",
        "/\\evil.example/",
        "/\\/evil.example/",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example/path",
        "/\t/evil.example/",  # browsers drop tabs and newlines: //evil.example/
        "/\n/evil.example/",
        "/\r/evil.example/",
        "/a\\b",
        "/" + "a" * MAX_NEXT,
    ],
)
def test_anything_but_a_path_of_ours_becomes_the_root(value: str | None) -> None:
    assert safe_next(value) == "/"


@pytest.mark.parametrize(
    "value", ["/", "/orgs/1/services", "/orgs/1/certificates?q=web&expiry=soon#top", "/%2F%2Fx"]
)
def test_a_path_of_ours_is_kept(value: str) -> None:
    assert safe_next(value) == value
