"""Who is asking: the principal an API token stands for."""

from __future__ import annotations

from dataclasses import dataclass

from restorebox.models import Sandbox


@dataclass(frozen=True)
class Principal:
    """Who is asking: a named API token. Admins see every sandbox; others their own."""

    name: str
    admin: bool = False

    def may_see(self, sandbox: Sandbox) -> bool:
        return self.admin or sandbox.owner == self.name


ADMIN = Principal("admin", admin=True)
