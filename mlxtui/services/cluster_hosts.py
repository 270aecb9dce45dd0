"""The Macs a cluster runs on: a hosts file in mlx.launch's JSON format, kept in the config dir.

The format is mlx.launch's own (`mlx._distributed_utils.common.Hostfile`), so the same file works with
`mlx.launch --hostfile` and `mlx_lm.share --hostfile`:

    {"backend": "ring", "envs": [], "hosts": [{"ssh": "mac1", "ips": ["10.0.0.1"]}, {"ssh": "mac2", ...}]}

A bare list of host objects is accepted too, as mlx.launch accepts it. Entries whose ssh name is
`127.0.0.1` run locally without SSH (mlx.launch's rule).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxtui import paths
from mlxtui.atomic import write_text_atomic
from mlxtui.services.bounded import BadFileError, read_json
from mlxtui.services.errors import MlxtuiError, NotFoundError

__all__ = [
    "ClusterError", "Host", "Hosts", "BACKENDS", "LOCAL", "hosts_path", "load_hosts", "parse_hosts",
    "save_hosts", "local_hosts",
]

#: mlx.launch's name for "this machine, no SSH"
LOCAL = "127.0.0.1"
#: backends mlx.launch can start on Macs (mpi and nccl are left out: not what a Mac cluster uses)
BACKENDS = ("ring", "jaccl", "jaccl-ring")
_MAX_HOSTS = 64


class ClusterError(MlxtuiError):
    """A cluster could not be planned, started, or kept running; the message says which host and why."""

    kind = "cluster"


@dataclass(frozen=True)
class Host:
    """One rank's machine: the name SSH uses, the IPs ranks talk over, and RDMA devices (jaccl)."""

    ssh: str
    ips: tuple[str, ...] = ()
    rdma: tuple[Any, ...] = ()

    @property
    def is_local(self) -> bool:
        return self.ssh == LOCAL

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ssh": self.ssh, "ips": list(self.ips)}
        if self.rdma:
            data["rdma"] = [list(r) if isinstance(r, tuple) else r for r in self.rdma]
        return data


@dataclass(frozen=True)
class Hosts:
    """A whole hosts file: the hosts in rank order, the backend and extra environment for every rank."""

    hosts: tuple[Host, ...]
    backend: str = "ring"
    envs: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "envs": list(self.envs), "hosts": [h.to_json() for h in self.hosts]}

    @property
    def all_local(self) -> bool:
        return all(h.is_local for h in self.hosts)


def hosts_path() -> Path:
    """Where the app keeps the hosts file: <config dir>/hosts.json."""
    return paths.config_dir() / "hosts.json"


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise BadFileError(f"{what} must be a non-empty name of at most 255 characters.")
    if any(c.isspace() or ord(c) < 32 for c in value) or value.startswith("-"):
        # The name goes to ssh as an argument: no spaces, control characters or option look-alikes.
        raise BadFileError(f"{what} {value!r} is not a host name ssh would take.")
    return value


def _host(entry: Any, index: int, name: str) -> Host:
    if not isinstance(entry, dict):
        raise BadFileError(f"{name}: host {index + 1} must be an object like {{\"ssh\": \"mac1\", \"ips\": [...]}}.")
    ssh = _text(entry.get("ssh"), f"{name}: host {index + 1}'s \"ssh\"")
    ips = entry.get("ips", [])
    if not isinstance(ips, list) or len(ips) > 16:
        raise BadFileError(f"{name}: host {ssh}'s \"ips\" must be a list of IP addresses.")
    for ip in ips:
        try:
            ipaddress.ip_address(ip if isinstance(ip, str) else "")
        except ValueError:
            raise BadFileError(f"{name}: host {ssh} lists {ip!r}, which is not an IP address.") from None
    if not ips:
        try:
            ipaddress.ip_address(ssh)
            ips = [ssh]  # mlx.launch's --hosts does the same for a bare IP
        except ValueError:
            pass
    rdma = entry.get("rdma", [])
    if not isinstance(rdma, list) or not all(r is None or isinstance(r, (str, list)) for r in rdma):
        raise BadFileError(f"{name}: host {ssh}'s \"rdma\" must be a list of device names or nulls.")
    # Lists inside become tuples: a Host is hashable (checks are shared by ranks on the same host).
    return Host(ssh, tuple(ips), tuple(tuple(r) if isinstance(r, list) else r for r in rdma))


def parse_hosts(data: Any, name: str = "the hosts file", path: Path | None = None) -> Hosts:
    """Check parsed JSON as mlx.launch would read it, with a clear error for each way it can be wrong."""
    backend, envs = "ring", []
    if isinstance(data, dict):
        backend = data.get("backend") or "ring"
        envs = data.get("envs", [])
        data = data.get("hosts")
    if not isinstance(data, list) or not data:
        raise BadFileError(f"{name} must list hosts: {{\"hosts\": [{{\"ssh\": \"mac1\", \"ips\": [\"10.0.0.1\"]}}, ...]}}.")
    if len(data) > _MAX_HOSTS:
        raise BadFileError(f"{name} lists {len(data)} hosts; at most {_MAX_HOSTS} are supported.")
    if backend not in BACKENDS:
        raise BadFileError(f"{name}: backend {backend!r} is not one of {', '.join(BACKENDS)}.")
    if not isinstance(envs, list) or not all(isinstance(e, str) and "=" in e for e in envs):
        raise BadFileError(f"{name}: \"envs\" must be a list of NAME=value strings.")
    hosts = tuple(_host(entry, i, name) for i, entry in enumerate(data))
    if backend == "ring":
        missing = [h.ssh for h in hosts if not h.ips]
        if missing:
            raise BadFileError(f"{name}: the ring backend needs an IP for every host; {', '.join(missing)} has none.")
    return Hosts(hosts, backend, tuple(envs), path)


def load_hosts(path: Path | str | None = None) -> Hosts:
    """Read a hosts file (default: the app's own); NotFoundError when it does not exist."""
    path = Path(path).expanduser() if path else hosts_path()
    try:
        data = read_json(path, max_bytes=256 * 1024)
    except FileNotFoundError:
        raise NotFoundError(f"No hosts file at {path}.", hint="Add hosts in the Hosts pane or `mlxtui cluster add`.") from None
    except IsADirectoryError:
        raise BadFileError(f"{path} is a folder, not a hosts file.") from None
    except OSError as error:
        raise BadFileError(f"{path} could not be read: {error.strerror or error}.") from None
    return parse_hosts(data, str(path), path)


def save_hosts(hosts: Hosts, path: Path | None = None) -> Path:
    """Write the hosts file atomically (checked by parsing it back first)."""
    path = path or hosts.path or hosts_path()
    parse_hosts(hosts.to_json(), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(hosts.to_json(), indent=2) + "\n")
    return path


def local_hosts(ranks: int = 2) -> Hosts:
    """`ranks` ranks on this machine over the ring backend (what the tests and a first try use)."""
    return Hosts(tuple(Host(LOCAL, (LOCAL,)) for _ in range(ranks)), "ring")
