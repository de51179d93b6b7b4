"""What every `kokoa admin` command shares: the API client (made on first use), the chosen
organisation, the output format, and turning a name into an id."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

from control.admin import config
from control.admin.errors import UsageError
from control.admin.output import Format

if TYPE_CHECKING:  # httpx takes most of the start-up time: loaded by the first request only
    from control.admin.client import ApiClient

MAX_SEARCH = 100  # the API's longest `q`


@dataclass
class Session:
    org_ref: str | None
    fmt: Format
    env: Mapping[str, str]
    _client: ApiClient | None = field(default=None, repr=False)
    _org_id: str | None = None

    def client(self) -> ApiClient:
        if self._client is None:
            from control.admin.client import ApiClient

            path = config.config_path(self.env)
            self._client = ApiClient(config.resolve(self.env, path))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def org_id(self) -> str:
        """--org (an id or a name), or the only organisation the token can see.

        Raises:
            UsageError: no such organisation, or several and none chosen.
        """
        if self._org_id is None:
            self._org_id = self._choose_org()
        return self._org_id

    def _choose_org(self) -> str:
        if self.org_ref and is_uuid(self.org_ref):
            return canonical(self.org_ref)
        orgs: list[dict[str, Any]] = self.client().get("/orgs")
        if self.org_ref:
            found = _pick(orgs, self.org_ref, ("name",))
            if len(found) == 1:
                return str(found[0]["id"])
            raise UsageError(f"no single organisation named {self.org_ref!r}; yours:" + _list(orgs))
        if len(orgs) == 1:
            return str(orgs[0]["id"])
        if not orgs:
            raise UsageError("this token belongs to no organisation")
        several = "the token sees several organisations; choose with --org or KOKOA_ORG:"
        raise UsageError(several + _list(orgs))

    def org_path(self, *parts: str) -> str:
        return "/".join(("/orgs", self.org_id(), *parts))

    def resolve(
        self, collection: str, ref: str, what: str, names: Sequence[str] = ("name",)
    ) -> str:
        """The id of the `what` in `collection` whose id or one of `names` is `ref`."""
        if is_uuid(ref):
            return canonical(ref)
        query = {"q": ref} if len(ref) <= MAX_SEARCH else {}
        items = self.client().list_all(self.org_path(collection), query)
        found = _pick(items, ref, names)
        if len(found) != 1:
            raise UsageError(f"no {what} named {ref!r}" if not found else f"{ref!r} is ambiguous")
        return str(found[0].get("id") or found[0].get("user_id"))


def current(ctx: typer.Context) -> Session:
    session = ctx.find_object(Session)
    if session is None:  # only when a sub-app is invoked without the root
        raise UsageError("run this through `kokoa admin`")
    return session


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def canonical(value: str) -> str:
    """An id in the API's form (any spelling uuid.UUID accepts): safe inside a URL path."""
    return str(uuid.UUID(value))


def require_id(value: str, what: str) -> str:
    if not is_uuid(value):
        raise UsageError(f"{value!r} is not {what} id")
    return canonical(value)


def _pick(items: list[dict[str, Any]], ref: str, names: Sequence[str]) -> list[dict[str, Any]]:
    """The items whose `names` fields equal `ref`; failing that, equal ignoring case."""
    exact = [i for i in items if any(i.get(n) == ref for n in names)]
    if exact:
        return exact
    wanted = ref.casefold()
    return [i for i in items if any(str(i.get(n, "")).casefold() == wanted for n in names)]


def _list(orgs: list[dict[str, Any]]) -> str:
    return "".join(f"\n  {o['id']}  {o['name']} ({o['role']})" for o in orgs) or " none"
