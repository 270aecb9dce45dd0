"""A throwaway OpenSSH server on 127.0.0.1 for end-to-end tests: own host key, own user key, own config."""

from __future__ import annotations

import getpass
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["SSHServer", "sshd_available"]

SSHD = "/usr/sbin/sshd"


def sshd_available() -> bool:
    return Path(SSHD).exists() and shutil.which("ssh") is not None and shutil.which("ssh-keygen") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SSHServer:
    """sshd -D on a free loopback port accepting only a key made for this test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        self.host_key = folder / "host_ed25519"
        self.user_key = folder / "user_ed25519"
        for key in (self.host_key, self.user_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        authorized = folder / "authorized_keys"
        authorized.write_text(self.user_key.with_suffix(".pub").read_text())
        os.chmod(authorized, 0o600)
        self.port = _free_port()
        self.user = getpass.getuser()
        config = folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    f"PidFile {folder / 'sshd.pid'}",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PubkeyAuthentication yes",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "PrintMotd no",
                    "PermitUserEnvironment no",
                    "ClientAliveInterval 1",
                    "ClientAliveCountMax 2",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege-separation dir sshd insists on
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"sshd exited: {self.process.stdout.read().decode()}")
                time.sleep(0.1)
        raise RuntimeError("sshd did not start listening")

    def command(self, remote: str, env: Mapping[str, str] | None = None) -> str:
        """The ssh command line (with a tty) that runs `remote` on this server with `env` set."""
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        options = [
            "-tt", "-i", str(self.user_key), "-p", str(self.port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2",
        ]
        inner = f"cd {shlex.quote(str(Path.cwd()))} && env {exports} {remote}"
        return shlex.join(["ssh", *options, f"{self.user}@127.0.0.1", inner])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
