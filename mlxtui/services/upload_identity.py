"""Who the token belongs to and where it may write: `whoami` through hubclient, read into an `Identity`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlxtui.services import hubclient
from mlxtui.services.errors import AuthError

if TYPE_CHECKING:
    from mlxtui.services import Context

__all__ = ["Identity", "identity_from_whoami", "whoami"]

_WRITE_ROLES = {"admin", "write", "contributor"}


@dataclass(frozen=True)
class Identity:
    """Who the token belongs to and where it may write (own namespace first). Holds no token."""

    user: str
    orgs: tuple[str, ...]
    writable: tuple[str, ...]
    role: str

    def can_write(self, namespace: str) -> bool:
        return namespace in self.writable


def identity_from_whoami(info: Any) -> Identity:
    """huggingface_hub's whoami answer as an Identity (type-checked: the answer comes from a server)."""
    info = info if isinstance(info, dict) else {}
    user = str(info.get("name") or "")
    auth = info.get("auth") if isinstance(info.get("auth"), dict) else {}
    token = auth.get("accessToken") if isinstance(auth.get("accessToken"), dict) else {}
    role = str(token.get("role") or "write")
    raw_orgs = [o for o in info.get("orgs") or [] if isinstance(o, dict) and o.get("name")]
    orgs = tuple(str(o["name"]) for o in raw_orgs)
    if role == "read":
        writable: tuple[str, ...] = ()
    elif role == "fineGrained":
        # fine-grained scopes are checked by the server itself; offer every namespace the user belongs to
        writable = (user, *orgs)
    else:
        writable = (user, *(str(o["name"]) for o in raw_orgs if o.get("roleInOrg", "write") in _WRITE_ROLES))
    return Identity(user=user, orgs=orgs, writable=writable, role=role)


async def whoami(ctx: Context) -> Identity:
    """The token's user, its orgs, and the namespaces it may write to."""
    if not hubclient.resolve_token(ctx):
        raise AuthError("No Hugging Face token found.", hint="Set HF_TOKEN or run `hf auth login`.")
    try:
        info = await hubclient.run(lambda: hubclient.make_api(ctx).whoami())
    except Exception as error:
        if hubclient.http_status(error) == 401:
            raise AuthError(f"{ctx.endpoint} refused the token (401).",
                            hint="Check HF_TOKEN or run `hf auth login` again.") from error
        raise hubclient.map_error(error, "", ctx.endpoint) from error
    return identity_from_whoami(info)
