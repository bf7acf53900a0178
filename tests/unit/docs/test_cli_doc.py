"""docs/cli.md against the commands themselves: walking the click command tree, every
command has its section with the usage line ``--help`` prints, and every option of every
command is in that section's table; the tables name no option a command does not have."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from swiftchain.cli import cli

from .pages import code_names, first_column, headings, own_text, read

PAGE = "docs/cli.md"


def commands() -> Iterator[tuple[str, click.Command, click.Context]]:
    """(``swiftchain registry source add``, command, context) for every command, root first."""
    stack = [("swiftchain", cli, click.Context(cli, info_name="swiftchain"))]
    while stack:
        name, command, ctx = stack.pop()
        yield name, command, ctx
        if isinstance(command, click.Group):
            # dict.fromkeys: the lazy group may list a verb twice once it has loaded it.
            for sub_name in reversed(dict.fromkeys(command.list_commands(ctx))):
                sub = command.get_command(ctx, sub_name)
                assert sub is not None, f"{name} lists {sub_name} but cannot load it"
                sub_ctx = click.Context(sub, info_name=sub_name, parent=ctx)
                stack.append((f"{name} {sub_name}", sub, sub_ctx))


def options(command: click.Command) -> set[str]:
    """The long and short names of a command's options, help left out."""
    found: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            found.update(param.opts + param.secondary_opts)
    return found


def usage(name: str, command: click.Command, ctx: click.Context) -> str:
    return " ".join([name, *command.collect_usage_pieces(ctx)])


def _section(name: str) -> str:
    if name == "swiftchain":
        # The root's options are on the page before its first command's heading.
        page = read(PAGE)
        return page[: page.index("## `swiftchain ")]
    return own_text(read(PAGE), name)


COMMANDS = {name: (command, ctx) for name, command, ctx in commands()}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_and_option_is_in_the_reference(name: str) -> None:
    command, ctx = COMMANDS[name]
    assert name == "swiftchain" or name in headings(read(PAGE)), f"{PAGE}: no section for {name}"
    text = _section(name)
    wanted_usage = usage(name, command, ctx)
    assert wanted_usage in text, f"{PAGE}, {name}: the usage line should read {wanted_usage!r}"
    in_table = {
        token
        for cell in first_column(text)
        for code in code_names(cell)
        for token in re.findall(r"(?<![\w-])--?[a-z][\w-]*", code)
    }
    missing = sorted(options(command) - in_table - {"-h"})
    assert not missing, f"{PAGE}, {name}: add {missing} to its table of options"
    unknown = sorted(in_table - options(command))
    assert not unknown, f"{PAGE}, {name}: {unknown} are not options of {name}"


def test_every_section_is_a_command() -> None:
    sections = [h for h in headings(read(PAGE)) if h.startswith("swiftchain ")]
    assert sorted(set(sections) - set(COMMANDS)) == []
    assert len(sections) == len(set(sections)), "a command has two sections"


def test_the_usage_lines_are_what_help_prints() -> None:
    # The page's usage lines come from collect_usage_pieces; make sure that is what the
    # real --help says, so the check above compares against the truth.
    for name in ("swiftchain keys new", "swiftchain registry source add"):
        command, ctx = COMMANDS[name]
        args = [*name.split()[1:], "--help"]
        printed = CliRunner().invoke(cli, args, prog_name="swiftchain", terminal_width=200)
        assert printed.exit_code == 0
        assert f"Usage: {usage(name, command, ctx)}" in printed.output
