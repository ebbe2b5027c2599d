"""A RabbitMQ virtual host of one test on the machine's broker (127.0.0.1:5672), with the admin user `guest` on it
for the site and a user limited to one queue for a remote worker, as docs/workers.md sets one up
(`rabbitmqctl set_permissions` with the queue's name as configure, write and read pattern). Both are deleted after.
Needs rabbitmqctl (the machine's RabbitMQ, run as root)."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass

HOST, PORT = "127.0.0.1", 5672


def available() -> bool:
    if shutil.which("rabbitmqctl") is None:
        return False
    try:
        with socket.create_connection((HOST, PORT), timeout=2):
            pass
    except OSError:
        return False
    return subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, timeout=60).returncode == 0


def ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def queue_pattern(queues: list[str]) -> str:
    return "^(" + "|".join(queue.replace("-", "\\-") for queue in queues) + ")$"


@dataclass
class VirtualHost:
    name: str
    users: list[str]

    def admin_url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{PORT}/{self.name}"

    def add_queue_user(self, queues: list[str]) -> str:
        """A user that may declare, consume from and publish to `queues` only; its broker URL."""
        user, password = f"sb-worker-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        ctl("add_user", user, password)
        self.users.append(user)
        pattern = queue_pattern(queues)
        ctl("set_permissions", "-p", self.name, user, pattern, pattern, pattern)
        return f"amqp://{user}:{password}@{HOST}:{PORT}/{self.name}"

    def delete(self) -> None:
        for user in self.users:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True, timeout=60)
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.name], capture_output=True, timeout=60)


def virtual_host() -> VirtualHost:
    host = VirtualHost(name=f"sb-test-{secrets.token_hex(4)}", users=[])
    ctl("add_vhost", host.name)
    ctl("set_permissions", "-p", host.name, "guest", ".*", ".*", ".*")
    return host
