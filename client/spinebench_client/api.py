"""Talking to the server's REST API: one session with the token, errors turned into one-line messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests
from tqdm import tqdm

TIMEOUT = (10, 120)  # connect, read (seconds)
CHUNK = 256 * 1024


class ClientError(Exception):
    """A problem to tell the user in one line; `exit_code` 1 (the server refused) or 2 (unreachable, not set up)."""

    def __init__(self, message: str, *, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


class Unreachable(ClientError):
    """The request got no answer (refused, reset mid-way, timed out): a resumable upload retries these."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


def explain(response: requests.Response) -> str:
    """The server's reason: DRF's `detail`, or field errors as `field: message`, else the status line."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} {response.reason}"
    if isinstance(body, dict):
        if "detail" in body:
            return str(body["detail"])
        parts = []
        for key, value in body.items():
            messages = value if isinstance(value, list) else [value]
            parts.append(f"{key}: {' '.join(str(message) for message in messages)}")
        if parts:
            return "; ".join(parts)
    return f"HTTP {response.status_code} {response.reason}"


@dataclass
class Server:
    url: str
    token: str | None = None

    def __post_init__(self):
        self.url = self.url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "spinebench-client"
        if self.token:
            self.session.headers["Authorization"] = f"Token {self.token}"

    def send(self, method: str, path: str, **kwargs) -> requests.Response:
        """One request, whatever its status; Unreachable when no answer came back."""
        try:
            return self.session.request(method, f"{self.url}{path}", timeout=TIMEOUT, **kwargs)
        except requests.exceptions.ConnectionError:
            raise Unreachable(f"Cannot reach the server at {self.url} (is it running?).") from None
        except requests.exceptions.Timeout:
            raise Unreachable(f"The server at {self.url} did not answer in time.") from None
        except requests.exceptions.RequestException as error:
            raise Unreachable(f"Request to {self.url} failed: {error}") from None

    def request(self, method: str, path: str, *, ok=(200,), **kwargs) -> requests.Response:
        response = self.send(method, path, **kwargs)
        if response.status_code not in ok:
            if response.status_code == 401:
                raise ClientError(f"The server refused the token ({explain(response)}); run `login` again.")
            raise ClientError(f"{method} {path}: {explain(response)}")
        return response

    def get(self, path: str, **kwargs):
        response = self.request("GET", path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{self.url}{path} did not answer with JSON (is this a SpineBench server?).") from None

    def download(self, path: str, target_dir: Path, *, default_name: str, quiet: bool = False) -> Path:
        """Stream a file into `target_dir`, resuming a `.part` left by an interrupted run (Range + If-Range on the
        ETag the server gave; a server that answers 200 instead restarts from zero)."""
        target_dir.mkdir(parents=True, exist_ok=True)
        part = target_dir / f"{default_name}.part"
        etag_file = target_dir / f"{default_name}.part.etag"
        headers = {}
        have = part.stat().st_size if part.is_file() else 0
        if have and etag_file.is_file():
            headers = {"Range": f"bytes={have}-", "If-Range": etag_file.read_text().strip()}
        else:
            have = 0
        response = self.request("GET", path, ok=(200, 206, 416), headers=headers, stream=True)
        with response:
            if response.status_code == 416:  # the part already holds everything
                part.replace(target_dir / default_name)
                etag_file.unlink(missing_ok=True)
                return target_dir / default_name
            if response.status_code == 200:
                have = 0
            if response.headers.get("ETag"):
                etag_file.write_text(response.headers["ETag"])
            total = have + int(response.headers.get("Content-Length", 0) or 0) or None
            with part.open("ab" if have else "wb") as handle, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=default_name, disable=quiet
            ) as bar:
                received = have
                try:
                    for block in response.iter_content(CHUNK):
                        handle.write(block)
                        received += len(block)
                        bar.update(len(block))
                except requests.exceptions.RequestException:
                    received = -1
                if received == -1 or (total is not None and received < total):
                    raise ClientError(
                        f"The download of {default_name} broke off; run the same command again to resume.",
                        exit_code=2,
                    )
        final = target_dir / default_name
        part.replace(final)
        etag_file.unlink(missing_ok=True)
        return final
