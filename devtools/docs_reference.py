"""Reference pages of the documentation site, generated at build time so they cannot drift.

- :func:`cli_reference`: every command of a click group (usage, help, arguments, options) as Markdown.
- :func:`config_reference`: every key of the deployment configuration, from its JSON Schema
  (``config/schema.json``, itself generated from ``infra/config_schema.py``).
- :func:`command_paths` and :func:`resolve_command`: the command tree, for tests that check what the
  reference and the hand-written pages name against the real click group.

Used by the MkDocs hook ``devtools/docs_hooks.py``; nothing here is in a Lambda bundle.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Sequence
from typing import Any

import click


# -- command line ----------------------------------------------------------------------------------
def _context(path: Sequence[tuple[str, click.Command]]) -> click.Context:
    ctx: click.Context | None = None
    for name, command in path:
        ctx = click.Context(command, info_name=name, parent=ctx, **command.context_settings)
    assert ctx is not None
    return ctx


def walk(root: click.Command, prog: str) -> Iterator[list[tuple[str, click.Command]]]:
    """Every command under ``root`` (itself first), as the chain of (name, command) that reaches it."""

    def visit(chain: list[tuple[str, click.Command]]) -> Iterator[list[tuple[str, click.Command]]]:
        yield chain
        command = chain[-1][1]
        if isinstance(command, click.Group):
            ctx = _context(chain)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from visit([*chain, (name, sub)])

    yield from visit([(prog, root)])


def command_paths(root: click.Command, prog: str) -> list[str]:
    """``["secretsctl", "secretsctl audit", "secretsctl secret get", ...]``: every command's full name."""
    return [" ".join(name for name, _ in chain) for chain in walk(root, prog)]


def resolve_command(root: click.Command, prog: str, words: Sequence[str]) -> str:
    """The full name of the command that ``prog WORDS...`` runs (options of each group skipped).

    Raises ``LookupError`` naming the first word that is neither an option of the group it follows
    nor one of its commands.
    """
    chain: list[tuple[str, click.Command]] = [(prog, root)]
    i = 0
    while i < len(words) and isinstance(chain[-1][1], click.Group):
        group = chain[-1][1]
        ctx = _context(chain)
        word = words[i]
        if word.startswith("-"):
            flag = word.split("=", 1)[0]
            option = next((p for p in group.get_params(ctx) if flag in (*p.opts, *p.secondary_opts)), None)
            if option is None:
                raise LookupError(f"{' '.join(n for n, _ in chain)} has no option {flag}")
            takes_value = isinstance(option, click.Option) and not option.is_flag and not option.count
            i += 2 if takes_value and "=" not in word else 1
            continue
        sub = group.get_command(ctx, word)
        if sub is None:
            raise LookupError(f"{' '.join(n for n, _ in chain)} has no command {word!r}")
        chain.append((word, sub))
        i += 1
    return " ".join(name for name, _ in chain)


def _rst(text: str) -> str:
    """A docstring-style description (``code`` in double backticks) as Markdown."""
    return inspect.cleandoc(text).replace("``", "`")


def _md(text: str) -> str:
    """Text for a Markdown table cell: no raw HTML; a ``|`` outside code spans escaped (inside one,
    Python-Markdown's tables already read it as text)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = (
            parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
        )
    return "`".join(parts)


def _help_text(command: click.Command) -> str:
    text = inspect.cleandoc(command.help or command.short_help or "")
    text = text.split("\f", 1)[0]  # click: what follows \f is for developers only
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def _command_section(chain: list[tuple[str, click.Command]]) -> list[str]:
    ctx = _context(chain)
    command = chain[-1][1]
    full = " ".join(name for name, _ in chain)
    lines = [f"## {full}", ""]
    help_text = _help_text(command)
    if help_text:
        lines += [_md(help_text), ""]
    lines += ["```text", command.get_usage(ctx).strip(), "```", ""]
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    if arguments:
        lines += ["| argument | required | repeatable |", "| --- | --- | --- |"]
        for arg in arguments:
            repeat = "yes" if arg.nargs == -1 or arg.nargs > 1 else "no"
            required = "yes" if arg.required else "no"
            lines.append(f"| `{arg.make_metavar(ctx)}` | {required} | {repeat} |")
        lines.append("")
    options = [
        record
        for p in command.get_params(ctx)
        if isinstance(p, click.Option) and (record := p.get_help_record(ctx)) is not None
    ]
    if options:
        lines += ["| option | meaning |", "| --- | --- |"]
        for names, help_record in options:
            lines.append(f"| `{_md(names)}` | {_md(help_record) or '-'} |")
        lines.append("")
    if isinstance(command, click.Group):
        subs = [(n, command.get_command(ctx, n)) for n in command.list_commands(ctx)]
        lines += ["| command | what it does |", "| --- | --- |"]
        for name, sub in subs:
            if sub is not None and not sub.hidden:
                anchor = f"{full} {name}".replace(" ", "-")
                summary = _help_text(sub).split("\n\n", 1)[0].replace("\n", " ")
                lines.append(f"| [`{name}`](#{anchor}) | {_md(summary)} |")
        lines.append("")
    return lines


def cli_reference(root: click.Command, prog: str) -> str:
    lines = [
        "# Command line reference",
        "",
        f"Generated from `{prog}`'s click commands when the site is built: every command, its usage,",
        "help and options exactly as `--help` prints them. The guide with examples is",
        "[Command line](cli.md).",
        "",
    ]
    for chain in walk(root, prog):
        lines += _command_section(chain)
    return "\n".join(lines)


# -- configuration ---------------------------------------------------------------------------------
class _Schema:
    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.rows: list[tuple[str, str, str, str, str]] = []  # path, type, required, default, allowed
        self.notes: list[tuple[str, str]] = []

    def deref(self, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if not ref:
            return node
        name = ref.rsplit("/", 1)[-1]
        return {**self.schema["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}

    def alternatives(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        """The non-null alternatives of an ``anyOf``/``oneOf`` (nested ones flattened)."""
        for key in ("anyOf", "oneOf"):
            if key in node:
                out: list[dict[str, Any]] = []
                for alt in node[key]:
                    if alt.get("type") != "null":
                        out += self.alternatives(self.deref(alt))
                return out
        return [node]

    def type_text(self, node: dict[str, Any]) -> str:
        node = self.deref(node)
        kinds = []
        for alt in self.alternatives(node):
            alt = self.deref(alt)
            kind = alt.get("type", "object" if "properties" in alt else "any")
            if kind == "array":
                kind = f"list of {self.type_text(alt.get('items', {}))}"
            elif kind == "object" and "additionalProperties" in alt and "properties" not in alt:
                values = alt["additionalProperties"]
                kind = f"map of name to {self.type_text(values) if isinstance(values, dict) else 'any'}"
            kinds.append(kind)
        return " or ".join(dict.fromkeys(kinds))

    def constraints(self, node: dict[str, Any]) -> str:
        parts: list[str] = []
        for alt in self.alternatives(self.deref(node)):
            alt = self.deref(alt)
            if "enum" in alt:
                parts.append("one of " + ", ".join(f"`{json.dumps(v)}`" for v in alt["enum"]))
            if "minimum" in alt or "maximum" in alt:
                parts.append(f"{alt.get('minimum', '')} to {alt.get('maximum', '')}")
            if "pattern" in alt:
                parts.append(f"pattern `{alt['pattern']}`")
            if alt.get("type") == "array" and "items" in alt:
                inner = self.constraints(alt["items"])
                if inner:
                    parts.append(f"each: {inner}")
        return "; ".join(parts)

    def visit(self, path: str, node: dict[str, Any], required: bool) -> None:
        node = self.deref(node)
        default = "-" if required or "default" not in node else f"`{json.dumps(node['default'])}`"
        if len(default) > 60:
            default = "each key's default, below"
        allowed = "; ".join(filter(None, [_rst(node.get("description", "")), self.constraints(node)]))
        self.rows.append((path, self.type_text(node), "yes" if required else "no", default, allowed))
        expanded: set[str] = set()  # an object given alone or as a list (``replication``) is listed once
        for alt in self.alternatives(node):
            alt = self.deref(alt)
            if alt.get("type") == "array":
                for item in self.alternatives(self.deref(alt.get("items", {}))):
                    item = self.deref(item)
                    if item.get("title") not in expanded:
                        expanded.add(item.get("title", ""))
                        self.children(f"{path}[]", item)
            elif "additionalProperties" in alt and isinstance(alt["additionalProperties"], dict):
                self.children(f"{path}.<name>", self.deref(alt["additionalProperties"]))
            elif alt.get("title") not in expanded:
                expanded.add(alt.get("title", ""))
                self.children(path, alt)

    def children(self, path: str, node: dict[str, Any]) -> None:
        if "properties" not in node:
            return
        if node.get("description"):
            self.notes.append((path, node["description"]))
        required = set(node.get("required", []))
        for name in sorted(node["properties"], key=lambda n: (n not in required, n.lower())):
            if name == "$schema":
                continue
            self.visit(f"{path}.{name}" if path else name, node["properties"][name], name in required)


def _section(path: str) -> str:
    return path.split(".", 1)[0].split("[", 1)[0]


def config_reference(schema: dict[str, Any], source: str = "config/schema.json") -> str:
    walker = _Schema(schema)
    walker.children("", schema)
    lines = [
        "# Configuration reference",
        "",
        f"Generated from `{source}` when the site is built, so it lists exactly what synthesis accepts.",
        "What each setting does, with the rules between fields, is in",
        "[Deploying: write the configuration](deploying.md#2-write-the-configuration).",
        "`[]` is an element of a list, `<name>` a key you choose. Unknown keys are refused everywhere.",
        "",
        _md(_rst(schema.get("description", ""))),
        "",
    ]
    nested = {_section(path) for path, *_ in walker.rows if path != _section(path)}
    sections = [("General", [r for r in walker.rows if _section(r[0]) not in nested])]
    sections += [(name, [r for r in walker.rows if _section(r[0]) == name]) for name in sorted(nested)]
    for title, rows in sections:
        lines += [f"## {title}", ""]
        for path, note in walker.notes:
            if _section(path) == title:
                lines.append(f"- `{path}`: {_md(_rst(note))}")
        lines += ["", "| key | type | required | default | allowed |", "| --- | --- | --- | --- | --- |"]
        for path, kind, required, default, allowed in rows:
            lines.append(f"| `{path}` | {_md(kind)} | {required} | {default} | {_md(allowed) or '-'} |")
        lines.append("")
    return "\n".join(lines)
