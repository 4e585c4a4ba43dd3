"""A small Dockerfile reader for tests that check or repeat the image's steps.

It covers the subset of the Dockerfile syntax that Steward's Dockerfile uses:
comments, line continuations, global ARGs with defaults, `FROM image AS
name`, and instructions in shell or exec (JSON array) form. Heredocs and
parser directives other than comments are not supported.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword in upper case, its arguments and line."""

    keyword: str
    arguments: str
    line: int

    def exec_form(self) -> list[str]:
        """Return the arguments of an exec-form instruction as a list."""
        value = json.loads(self.arguments)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"line {self.line}: expected a JSON array of strings")
        return value

    def pairs(self) -> dict[str, str]:
        """Return the `KEY=VALUE` pairs of an ENV or ARG instruction."""
        result = {}
        for token in shlex.split(self.arguments):
            key, separator, value = token.partition("=")
            if not separator:
                raise ValueError(f"line {self.line}: expected KEY=VALUE, got {token}")
            result[key] = value
        return result


@dataclass
class Stage:
    """One build stage: its base image (ARGs resolved), name and instructions."""

    base: str
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        if len(found) != 1:
            raise ValueError(f"expected one {keyword} in the stage, found {len(found)}")
        return found[0]

    def healthcheck(self) -> tuple[list[str], list[str]]:
        """Return the HEALTHCHECK's options and its exec-form command."""
        instruction = self.one("HEALTHCHECK")
        options, marker, command = instruction.arguments.partition("CMD ")
        if not marker:
            raise ValueError(f"line {instruction.line}: missing CMD in HEALTHCHECK")
        exec_form = Instruction("CMD", command.strip(), instruction.line)
        return options.split(), exec_form.exec_form()

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        """Return `base` updated by the stage's ENV lines, expanding `$NAME`."""
        result = dict(base)
        for instruction in self.all("ENV"):
            for key, value in instruction.pairs().items():
                result[key] = Template(value).safe_substitute(result)
        return result


@dataclass
class Dockerfile:
    """The global ARG defaults and the stages, in file order."""

    arguments: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named {name}")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continued lines and drop comments, keeping each start line."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        lines.append((start, " ".join(part for part in pending if part)))
        pending = []
    if pending:
        raise ValueError(
            f"line {start}: unfinished line continuation at the end of the file"
        )
    return lines


def parse_dockerfile(path: Path) -> Dockerfile:
    """Parse `path` into its global ARGs and stages."""
    arguments: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, rest = text.partition(" ")
        instruction = Instruction(keyword.upper(), rest.strip(), line)
        if instruction.keyword == "FROM":
            tokens = instruction.arguments.split()
            image = _VARIABLE.sub(lambda m: arguments[m.group(1)], tokens[0])
            name = tokens[2] if len(tokens) == 3 and tokens[1].upper() == "AS" else None
            stages.append(Stage(base=image, name=name, line=line))
        elif not stages:
            if instruction.keyword != "ARG":
                raise ValueError(f"line {line}: only ARG may come before FROM")
            arguments.update(instruction.pairs())
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(arguments=arguments, stages=stages)
