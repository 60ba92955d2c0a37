"""``secret dump``: one file per secret, mode 0600, never inside a git work tree unless git ignores it."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from .errors import CliError, Refused
from .output import parse_fields

FORMATS = ("json", "env")


def file_name(secret_name: str, fmt: str) -> str:
    """A secret's name as one safe file name (``app/db`` -> ``app_db.json``)."""
    safe = re.sub(r"[^A-Za-z0-9._+=@-]", "_", secret_name).lstrip(".") or "secret"
    return f"{safe}.{fmt}"


def _git_work_tree(directory: Path) -> Path | None:
    """The work tree containing ``directory`` (git decides), or ``None``; refuse a .git without git."""
    git = shutil.which("git")
    if git is None:
        for parent in (directory, *directory.parents):
            if (parent / ".git").exists():
                raise Refused(
                    f"{directory} is inside a git work tree ({parent}) and git is not installed to tell "
                    "whether the path is ignored"
                )
        return None
    probe = subprocess.run(  # noqa: S603 - git from PATH, fixed arguments
        [git, "-C", str(directory), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    )
    return Path(probe.stdout.strip()) if probe.returncode == 0 and probe.stdout.strip() else None


def check_destination(directory: Path, files: list[Path]) -> None:
    """Refuse when a file would land in a git work tree without being ignored there."""
    top = _git_work_tree(directory)
    if top is None:
        return
    git = shutil.which("git") or "git"
    for path in files:
        ignored = subprocess.run(  # noqa: S603 - git from PATH, fixed arguments
            [git, "-C", str(directory), "check-ignore", "-q", "--no-index", str(path)],
            capture_output=True,
            check=False,
        )
        if ignored.returncode != 0:
            raise Refused(
                f"{path} would be inside the git work tree {top} and is not ignored there: "
                "dump outside the work tree, or add the path to .gitignore"
            )


def render(secret_string: str | None, fmt: str) -> str:
    if secret_string is None:
        raise CliError("binary secrets cannot be dumped")
    if fmt == "json":
        fields = parse_fields(secret_string)
        return (secret_string if fields is None else _json(fields)) + "\n"
    fields = parse_fields(secret_string)
    if fields is None:
        return f"VALUE={shlex.quote(secret_string)}\n"
    lines = []
    for key, value in fields.items():
        var = re.sub(r"[^A-Za-z0-9_]", "_", str(key)).upper()
        if var[:1].isdigit():
            var = "_" + var
        text = value if isinstance(value, str) else _json(value)
        lines.append(f"{var}={shlex.quote(text)}")
    return "\n".join(lines) + "\n"


def _json(value: object) -> str:
    import json

    return json.dumps(value, indent=2)


def prepare_directory(directory: Path) -> None:
    """Create ``directory`` (0700), or set an existing one to 0700; refuse a symlink or a non-directory."""
    if directory.is_symlink():
        raise Refused(f"{directory} is a symbolic link; dump into a real directory")
    if directory.exists() and not directory.is_dir():
        raise CliError(f"{directory} exists and is not a directory")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise CliError(f"cannot prepare {directory}: {exc.strerror}") from None


def write_private(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` readable by the owner only (0600), also when the file existed.

    Bytes are written exactly as given; a symbolic link at ``path`` is refused (never followed)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except OSError as exc:
        if path.is_symlink():
            raise Refused(f"{path} is a symbolic link; not following it") from None
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            fd = -1
            f.write(data)
    finally:
        if fd != -1:
            os.close(fd)
