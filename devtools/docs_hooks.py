"""MkDocs hook (``mkdocs.yml``: ``hooks``): adds the generated reference pages to the site.

``cli-reference.md`` comes from the ``secretsctl`` click group and ``configuration.md`` from
``config/schema.json``, at every build, so neither can drift from the code.

Table cells in the pages write a pipe inside code as ``\\|`` (GitHub needs it); Python-Markdown already
reads a pipe inside a code span as text and would show the backslash, so the build drops it there.
"""

from __future__ import annotations

import json
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from devtools.docs_reference import cli_reference, config_reference

REPO = Path(__file__).resolve().parent.parent


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from secretsctl.cli import cli

    schema = json.loads((REPO / "config" / "schema.json").read_text())
    files.append(File.generated(config, "cli-reference.md", content=cli_reference(cli, "secretsctl")))
    files.append(File.generated(config, "configuration.md", content=config_reference(schema)))
    return files


def unescape_pipes_in_code(markdown: str) -> str:
    """``\\|`` inside the code spans of table rows becomes ``|``; nothing else changes."""
    lines = markdown.split("\n")
    for n, line in enumerate(lines):
        if line.startswith("|") and "\\|" in line:
            parts = line.split("`")
            lines[n] = "`".join(p.replace("\\|", "|") if i % 2 else p for i, p in enumerate(parts))
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return unescape_pipes_in_code(markdown)
