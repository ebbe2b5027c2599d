"""`spinebench-client`: login, challenges, phases, download, submit [--wait], status, leaderboard.

Exit status: 0 done; 1 the server refused, or a submission failed or was cancelled; 2 not logged in, server
unreachable or interrupted. Every problem is one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path

from . import config, uploads
from .api import ClientError, Server

FINAL = ("succeeded", "failed", "cancelled")


def _server() -> Server:
    stored = config.load()
    return Server(stored["server"], stored["token"])


def _print_table(rows: list[list], header: list[str]) -> None:
    table = [header] + [["" if cell is None else str(cell) for cell in row] for row in rows]
    widths = [max(len(row[index]) for row in table) for index in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


# ----------------------------------------------------------------------------------------------------- commands


def _secret(prompt: str) -> str:
    """A password or token: typed without echo on a terminal, else one line of stdin (scripts, tests)."""
    return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")


def login(args) -> int:
    server = Server(args.server)
    if args.username:
        password = _secret(f"Password of {args.username}: ")
        answer = server.request("POST", "/api/auth/token/", data={"username": args.username, "password": password})
        token = answer.json().get("token", "")
    else:
        token = args.token if args.token not in (None, "-") else _secret("API token (from the site's token page): ")
    token = token.strip()
    if not token:
        raise ClientError("No token given.")
    Server(args.server, token).get("/api/submissions/")  # the token works (a 401 says so)
    path = config.save(server=args.server, token=token)
    print(f"Logged in to {args.server.rstrip('/')}; token stored in {path} (readable by you only).")
    return 0


def challenges(args) -> int:
    found = _server().get("/api/challenges/")
    _print_table([[c.get("slug"), c.get("title")] for c in found], ["CHALLENGE", "TITLE"])
    return 0


def phases(args) -> int:
    found = _server().get("/api/phases/", params={"challenge": args.challenge})
    if not found:
        raise ClientError(f"No phases you may see in challenge {args.challenge!r}.")
    _print_table(
        [[p["id"], p["slug"], p["title"], "open" if p.get("is_open") else "closed", p.get("closes_at") or "-"]
         for p in found],
        ["ID", "PHASE", "TITLE", "STATE", "CLOSES"],
    )
    return 0


def download(args) -> int:
    server = _server()
    phase = server.get(f"/api/phases/{args.phase}/")
    prefix = f"{phase['challenge']}-{phase['slug']}" if isinstance(phase.get("challenge"), str) else phase["slug"]
    wanted = []
    if args.what in ("both", "inputs") and phase.get("submission_kind") == "csv":
        wanted.append((f"/api/phases/{phase['id']}/inputs/", f"{prefix}-inputs.zip"))
    if args.what in ("both", "training") and phase.get("training_dataset"):
        wanted.append((f"/api/datasets/{phase['training_dataset']}/download/", f"{prefix}-training.zip"))
    if not wanted:
        raise ClientError(f"Phase {args.phase} offers no {'data' if args.what == 'both' else args.what} to download.")
    for path, name in wanted:
        saved = server.download(path, Path(args.dest), default_name=name, quiet=args.quiet)
        print(f"saved {saved}")
    return 0


def _show_submission(submission: dict) -> None:
    print(f"submission {submission['id']}: {submission['status']}")
    if submission.get("error_message"):
        print(f"error: {submission['error_message']}")
    if submission.get("rank") is not None:
        print(f"rank: {submission['rank']}")
    for key, value in (submission.get("aggregates") or {}).items():
        print(f"{key}: {value}")


def session_kind(phase: dict, path: Path) -> str:
    """The upload-session kind a file travels as, or "" for a predictions CSV, which goes in one request."""
    if phase.get("submission_kind") == "algorithm":
        return "algorithm_archive"
    return "" if path.suffix.lower() == ".csv" else "predictions_zip"


def submit(args) -> int:
    server = _server()
    path = Path(args.file)
    if not path.is_file():
        raise ClientError(f"No such file: {path}")
    card = {
        "comment": args.comment, "method_name": args.method_name, "method_description": args.method_description,
        "paper_url": args.paper_url, "code_url": args.code_url,
    }
    fields = {key: value for key, value in card.items() if value}
    kind = session_kind(server.get(f"/api/phases/{args.phase}/"), path)
    url = f"/api/phases/{args.phase}/submissions/"
    if kind:  # archives and zips: the resumable chunked upload, then the submission names the finished upload
        sent = uploads.send_file(server, path, kind=kind, quiet=args.quiet, retries=args.retries)
        submission = server.request("POST", url, ok=(201,), json={**fields, "upload": sent.session_id}).json()
        uploads.forget(sent)
    else:
        with path.open("rb") as handle:
            submission = server.request("POST", url, ok=(201,), data=fields, files={"file": (path.name, handle)}).json()
    print(f"submitted: submission {submission['id']} ({submission['status']})")
    if args.wait:
        submission = _wait(server, submission, interval=args.interval, timeout=args.timeout)
        _show_submission(submission)
    return 0 if not args.wait or submission["status"] == "succeeded" else 1


def _wait(server: Server, submission: dict, *, interval: float, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    last = submission["status"]
    while submission["status"] not in FINAL:
        if time.monotonic() > deadline:
            raise ClientError(f"Gave up waiting after {timeout:.0f} s; submission {submission['id']} is {last}.")
        time.sleep(interval)
        submission = server.get(f"/api/submissions/{submission['id']}/")
        if submission["status"] != last:
            last = submission["status"]
            print(f"... {last}", file=sys.stderr)
    return submission


def status(args) -> int:
    submission = _server().get(f"/api/submissions/{args.id}/")
    _show_submission(submission)
    return 1 if submission["status"] in ("failed", "cancelled") else 0


def leaderboard(args) -> int:
    part = "?part=final" if args.final else ""
    board = _server().get(f"/api/phases/{args.phase}/leaderboard/{part}")
    if args.json:
        print(json.dumps(board, indent=2))
        return 0
    metrics = board.get("metrics", [])
    _print_table(
        [[row["rank"], row["participant"], row.get("method_name", ""), *(row.get(key) for key in metrics)]
         for row in board.get("rows", [])],
        ["RANK", "PARTICIPANT", "METHOD", *metrics],
    )
    return 0


# ------------------------------------------------------------------------------------------------------- parser


def build_parser(prog: str = "spinebench-client") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Command-line client of a SpineBench server.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("login", help="store the server address and an API token")
    command.add_argument("--server", required=True, help="e.g. https://spinebench.example.org")
    who = command.add_mutually_exclusive_group()
    who.add_argument("--username", help="ask for the password and get a new token")
    who.add_argument("--token", nargs="?", const="-", help="an existing token (without a value: read it from stdin)")
    command.set_defaults(func=login)

    commands.add_parser("challenges", help="challenges you may see").set_defaults(func=challenges)

    command = commands.add_parser("phases", help="the phases of a challenge")
    command.add_argument("challenge", help="challenge slug")
    command.set_defaults(func=phases)

    command = commands.add_parser("download", help="a phase's test inputs and training data (resumable)")
    command.add_argument("phase", type=int, help="phase id")
    command.add_argument("--what", choices=("both", "inputs", "training"), default="both")
    command.add_argument("--dest", default=".", help="folder to save into (default: here)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    command.set_defaults(func=download)

    command = commands.add_parser("submit", help="upload predictions (or an algorithm archive) to a phase")
    command.add_argument("phase", type=int, help="phase id")
    command.add_argument("file")
    command.add_argument("--comment", default="")
    command.add_argument("--method-name", default="")
    command.add_argument("--method-description", default="")
    command.add_argument("--paper-url", default="")
    command.add_argument("--code-url", default="")
    command.add_argument("--retries", type=int, default=uploads.RETRIES,
                         help="times a large upload goes on after a lost connection before giving up (then run the "
                         "same command again to resume it)")
    command.add_argument("--quiet", action="store_true", help="no progress bar")
    command.add_argument("--wait", action="store_true", help="poll until scored; non-zero exit when it fails")
    command.add_argument("--interval", type=float, default=3.0, help="seconds between polls")
    command.add_argument("--timeout", type=float, default=3600.0, help="give up waiting after this many seconds")
    command.set_defaults(func=submit)

    command = commands.add_parser("status", help="a submission's status and scores")
    command.add_argument("id", type=int)
    command.set_defaults(func=status)

    command = commands.add_parser("leaderboard", help="a phase's leaderboard")
    command.add_argument("phase", type=int, help="phase id")
    command.add_argument("--json", action="store_true", help="the API's JSON as it is")
    command.add_argument("--final", action="store_true",
                         help="a split phase's final leaderboard (its private part), once the organizers revealed it")
    command.set_defaults(func=leaderboard)
    return parser


def main(argv=None, *, prog: str = "spinebench-client") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except config.NotLoggedIn as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    except ClientError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 2
