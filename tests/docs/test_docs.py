"""The documentation: the site builds with --strict, its references match the code, the README is the
short way in, and every section of the README it replaced has a home in the site."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.docs_reference import command_paths, resolve_command
from secretsctl.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HERE = Path(__file__).resolve().parent

# The README's Quick start, byte for byte: the same two commands, first.
QUICK_START = """## Quick start

```bash
./scripts/demo.sh    # local end-to-end run: real PostgreSQL + MariaDB, emulated AWS, no account needed
./scripts/test.sh    # the full test suite: lint, CDK synth + cfn-lint, pytest on real database servers
```

Both run on a fresh Debian/Ubuntu machine as root (or a user with sudo): `scripts/setup.sh` installs what
is missing (PostgreSQL and MariaDB server packages, openssl, Node.js for the pinned CDK CLI, a `.venv`
with the pinned Python requirements) and is a no-op the second time. `.ci/run` runs exactly these.
"""


# A command line: `secretsctl` first on a line (after a `$ ` prompt or `.venv/bin/`) or in `$(...)`.
COMMAND = re.compile(
    r"(?m)(?:^[ \t]*(?:\$[ \t]+)?(?:\.venv/bin/)?|\$\()secretsctl(?![\w:.-])((?:[ \t]+[^\s`|;)&#\"']+)*)"
)


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built site: scripts/test.sh builds it with --strict just before pytest (DOCS_SITE_DIR)."""
    prebuilt = os.environ.get("DOCS_SITE_DIR")
    if prebuilt and (Path(prebuilt) / "index.html").exists():
        return Path(prebuilt)
    out = tmp_path_factory.mktemp("site")
    proc = build(ROOT / "mkdocs.yml", out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def page_html(site: Path, page: str) -> str:
    built = site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
    assert built.exists(), f"{page} is not in the built site"
    return built.read_text()


def anchors(text: str) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', text))


def markdown_sources() -> list[Path]:
    """The hand-written pages (not the colleagues' _incoming/ notes) and the README."""
    pages = [p for p in DOCS.rglob("*.md") if "_incoming" not in p.relative_to(DOCS).parts]
    return [ROOT / "README.md", *sorted(pages)]


def test_strict_build_passes_and_loads_nothing_from_the_internet(site: Path) -> None:
    assert (site / "index.html").exists()
    fetched = re.compile(
        r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//|@import\s+url\(\s*[\"']?https?:"
        r"|fonts\.googleapis|fonts\.gstatic"
    )
    for path in site.rglob("*"):
        if path.suffix in {".html", ".css", ".js"}:
            assert not fetched.search(path.read_text(errors="replace")), f"{path} loads from the internet"


def test_cli_reference_lists_exactly_the_click_commands(site: Path) -> None:
    text = page_html(site, "cli-reference.md")
    headings = {
        html.unescape(re.sub(r"<[^>]+>", "", title)).strip()
        for title in re.findall(r"<h2 id=\"[^\"]+\">(.*?)<a class=\"headerlink\"", text)
    }
    commands = set(command_paths(cli, "secretsctl"))
    assert {"secretsctl", "secretsctl secret get", "secretsctl status", "secretsctl param plan"} <= commands
    assert headings == commands
    for name in commands - {"secretsctl"}:  # every command's own usage line is on the page
        assert f"Usage: {name} " in html.unescape(text)


def test_configuration_reference_lists_every_schema_key(site: Path) -> None:
    import json

    schema = json.loads((ROOT / "config" / "schema.json").read_text())
    # keys as <code>rotation.kmsKeys.&lt;name&gt;.description</code>
    text = page_html(site, "configuration.md")
    for name in schema["properties"]:
        if name != "$schema":
            assert f"<code>{name}</code>" in text
    for definition in schema["$defs"].values():
        for key in definition.get("properties", {}):
            assert re.search(rf"<code>[^<]*\.{re.escape(key)}</code>", text), key


def test_commands_named_in_the_docs_exist() -> None:
    """Every `secretsctl ...` in a code span or code block of the README and the pages is a real command."""
    named = 0
    for source in markdown_sources():
        text = source.read_text()
        code = re.findall(r"```.*?```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text)
        for chunk in code:
            for match in COMMAND.finditer(chunk):
                words = match.group(1).split()
                try:
                    resolve_command(cli, "secretsctl", words)
                except LookupError as exc:
                    pytest.fail(f"{source.relative_to(ROOT)}: `secretsctl {' '.join(words)}`: {exc}")
                named += 1
    assert named > 20


def test_commands_in_the_guide_tables_exist() -> None:
    """The guide's command tables (`secret get NAME ...`, `param plan FILE ...`) name real commands."""
    rows = re.findall(r"(?m)^\| `([a-z][^`]*)` \|", (DOCS / "cli.md").read_text())
    assert len(rows) > 15
    top = {name.split()[1] for name in command_paths(cli, "secretsctl") if name != "secretsctl"}
    for row in rows:
        words = row.split()
        if words[0] in top:
            resolved = resolve_command(cli, "secretsctl", words)
            assert resolved != "secretsctl", row


def test_command_resolution_refuses_what_the_cli_does_not_have() -> None:
    assert resolve_command(cli, "secretsctl", ["-o", "json", "--yes", "secret", "get", "x"]) == (
        "secretsctl secret get"
    )
    assert resolve_command(cli, "secretsctl", ["--region=eu-west-1", "status", "--fail-on", "all"]) == (
        "secretsctl status"
    )
    with pytest.raises(LookupError, match="no command 'frobnicate'"):
        resolve_command(cli, "secretsctl", ["secret", "frobnicate"])
    with pytest.raises(LookupError, match="no option --colour"):
        resolve_command(cli, "secretsctl", ["--colour", "status"])


def test_every_section_of_the_old_readme_has_a_home(site: Path) -> None:
    lines = [line for line in (HERE / "readme_sections.txt").read_text().splitlines() if line.strip()]
    assert len(lines) == 50  # every #, ## , ### and #### heading of the 1,617-line README it replaced
    for line in lines:
        heading, target = line.rsplit(" -> ", 1)
        assert re.match(r"#{1,4} \S", heading), line
        page, anchor = target.split("#", 1)
        assert anchor in anchors(page_html(site, page)), f"{heading}: no #{anchor} in {page}"


def test_readme_is_short_and_opens_with_the_quick_start() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    sections = re.split(r"(?m)^(?=## )", text)
    assert sections[1] == QUICK_START + "\n"


def test_readme_links_into_the_docs_resolve(site: Path) -> None:
    links = re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#([^)\s]+))?\)", (ROOT / "README.md").read_text())
    assert len(links) >= 8
    for page, anchor in links:
        assert (ROOT / page).exists(), page
        if anchor:
            assert anchor in anchors(page_html(site, page.removeprefix("docs/"))), f"{page}#{anchor}"


def test_incoming_notes_are_left_out_of_the_site(tmp_path: Path) -> None:
    """A colleague's note in docs/_incoming/ is not published and its links do not break --strict."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    (docs / "_incoming" / "some-branch.md").write_text(
        "# New behaviour\n\nSee [a page that is not there](missing.md#nowhere).\n"
    )
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for shared in ("devtools", "secretsctl", "config"):  # the hook and what it reads
        (tmp_path / shared).symlink_to(ROOT / shared)
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list((tmp_path / "site").rglob("*some-branch*"))
    assert not (tmp_path / "site" / "_incoming").exists()
    # the same note outside _incoming/ is published, so its broken link fails the strict build
    shutil.move(docs / "_incoming" / "some-branch.md", docs / "some-branch.md")
    proc = build(tmp_path / "mkdocs.yml", tmp_path / "site2")
    assert proc.returncode != 0 and "missing.md" in proc.stderr
