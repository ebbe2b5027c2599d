"""Upload limits and the refusals they cause: shared by the streaming handler, the middleware and the services."""

from __future__ import annotations

from dataclasses import dataclass


def human_size(size: float) -> str:
    """`2048` -> `2.0 KiB`; bytes below 1 KiB stay exact."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} bytes"


@dataclass(frozen=True)
class UploadLimit:
    """A byte limit and whose it is ("this phase's", "the site's"), so a refusal names the limit that applied."""

    bytes: int
    owner: str

    @classmethod
    def strictest(cls, *limits: UploadLimit | None) -> UploadLimit:
        return min((limit for limit in limits if limit is not None), key=lambda limit: limit.bytes)

    def describe(self) -> str:
        return f"{self.owner} limit of {human_size(self.bytes)}"


class UploadRefused(Exception):
    """An upload that was not stored at all (too large, over the storage quota). `code` is for API clients;
    `status` the HTTP status a view answers with; the message names the limit and is safe to show."""

    def __init__(self, message: str, *, code: str, limit_bytes: int | None = None, status: int = 413):
        super().__init__(message)
        self.code, self.limit_bytes, self.status = code, limit_bytes, status

    def as_dict(self) -> dict:
        payload: dict[str, object] = {"detail": str(self), "code": self.code}
        if self.limit_bytes is not None:
            payload["limit_bytes"] = self.limit_bytes
        return payload
