"""MkDocs hook (``mkdocs.yml``: ``hooks``): adds the generated reference pages to the site.

``cli-reference.md`` comes from the ``secretsctl`` click group and ``configuration.md`` from
``config/schema.json``, at every build, so neither can drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

from devtools.docs_reference import cli_reference, config_reference

REPO = Path(__file__).resolve().parent.parent


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from secretsctl.cli import cli

    schema = json.loads((REPO / "config" / "schema.json").read_text())
    files.append(File.generated(config, "cli-reference.md", content=cli_reference(cli, "secretsctl")))
    files.append(File.generated(config, "configuration.md", content=config_reference(schema)))
    return files
