"""Parsing the text typed after /nhi into a subcommand and its arguments.

Parsing happens before anything is read or written, so input that does not
parse changes nothing. Every failure raises UsageError with a sentence saying
what was wrong, and the command replies with it and the usage lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.errors import UsageError
from governance.discovery.service import check_source_name
from governance.errors import InvalidInputError
from governance.identity.models import RiskTier
from governance.ids import parse_database_id
from governance.textsafety import first_control_character, printable

MAX_TEXT_LENGTH = 1000
# Ten years; larger values only overflow date arithmetic.
MAX_DUE_DAYS = 3650


class Subcommand(StrEnum):
    """A subcommand of /nhi."""

    HELP = "help"
    STATUS = "status"
    WHOIS = "whois"
    MINE = "mine"
    ORPHANS = "orphans"
    CAMPAIGN_START = "campaign start"
    CAMPAIGN_STATUS = "campaign status"
    CAMPAIGN_CLOSE = "campaign close"
    REPORT = "report"


USAGE: list[tuple[str, str]] = [
    ("help", "list these subcommands"),
    (
        "status NAME | ID | SOURCE:EXTERNAL_ID",
        "everything about one identity you own or back up (security admins: any)",
    ),
    (
        "whois KEY ID | ACCESSOR | ARN | NAME",
        "find identities by an identifier and show their owner and source",
    ),
    ("mine", "your identities, your pending reviews and your pending claims"),
    ("orphans", "identities without an owner and their claim deadlines (admins)"),
    (
        "campaign start [--tier privileged|standard] [--source NAME] [--due DAYS]",
        "open a certification campaign for the identities due (admins)",
    ),
    ("campaign status ID", "a campaign's progress (admins)"),
    ("campaign close ID", "close a campaign; unanswered reviews expire (admins)"),
    ("report", "the governance report summary (admins)"),
]


@dataclass(frozen=True)
class CampaignOptions:
    """The options of `campaign start`, as `steward campaign start` takes them."""

    tier: RiskTier | None = None
    source: str | None = None
    due_days: int = 0


@dataclass(frozen=True)
class Invocation:
    """A parsed command; `text` is the normalised input, to parse again later."""

    subcommand: Subcommand
    text: str
    argument: str = ""
    campaign_id: int | None = None
    options: CampaignOptions = CampaignOptions()


def parse(text: str) -> Invocation:
    """Parse the text after /nhi; raise UsageError when it is not a command."""
    if len(text) > MAX_TEXT_LENGTH:
        raise UsageError(
            f"The command text is {len(text):,} characters long; "
            f"at most {MAX_TEXT_LENGTH:,} are accepted."
        )
    # PostgreSQL rejects NUL in text parameters, and a terminal escape
    # sequence names no identity, so such text is rejected before any query.
    control = first_control_character(text, allow_whitespace=True)
    if control is not None:
        raise UsageError(
            f"The command text contains the control character {control}; "
            "type it again without it."
        )
    stripped = text.strip()
    tokens = stripped.split()
    if not tokens:
        return Invocation(Subcommand.HELP, "help")
    name = tokens[0].lower()
    rest = stripped[len(tokens[0]) :].strip()
    if name in ("help", "mine", "orphans", "report"):
        if rest:
            raise UsageError(f"`{name}` takes no arguments.")
        return Invocation(Subcommand(name), name)
    if name in ("status", "whois"):
        if not rest:
            raise UsageError(f"`{name}` needs something to look up.")
        return Invocation(Subcommand(name), f"{name} {rest}", argument=rest)
    if name == "campaign":
        return _parse_campaign(tokens[1:])
    raise UsageError(f"Unknown subcommand `{_quoted(tokens[0])}`.")


def _quoted(token: str) -> str:
    return printable(token[:40]).replace("`", "'")


def _parse_campaign(tokens: list[str]) -> Invocation:
    if not tokens:
        raise UsageError("`campaign` needs `start`, `status ID` or `close ID`.")
    action = tokens[0].lower()
    arguments = tokens[1:]
    if action == "start":
        options = _parse_start_options(arguments)
        return Invocation(
            Subcommand.CAMPAIGN_START,
            " ".join(["campaign", "start", *arguments]),
            options=options,
        )
    if action in ("status", "close"):
        if len(arguments) != 1:
            raise UsageError(f"`campaign {action}` takes exactly one campaign id.")
        campaign_id = _positive_int(arguments[0], "campaign id")
        return Invocation(
            Subcommand(f"campaign {action}"),
            f"campaign {action} {campaign_id}",
            campaign_id=campaign_id,
        )
    raise UsageError(f"Unknown campaign action `{_quoted(tokens[0])}`.")


def _positive_int(text: str, label: str) -> int:
    number = parse_database_id(text)
    if number is None or number < 1:
        raise UsageError(f"Invalid {label} `{_quoted(text)}`: expected a number.")
    return number


def _split_options(tokens: list[str]) -> dict[str, str]:
    """Return `--name value` and `--name=value` pairs; reject anything else."""
    values: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("--"):
            raise UsageError(f"Unexpected argument `{_quoted(token)}`.")
        name, separator, value = token[2:].partition("=")
        if not separator:
            index += 1
            if index == len(tokens):
                raise UsageError(f"Option `--{_quoted(name)}` needs a value.")
            value = tokens[index]
        if name in values:
            raise UsageError(f"Option `--{_quoted(name)}` is given twice.")
        values[name] = value
        index += 1
    return values


def _parse_start_options(tokens: list[str]) -> CampaignOptions:
    values = _split_options(tokens)
    unknown = sorted(set(values) - {"tier", "source", "due"})
    if unknown:
        raise UsageError(f"Unknown option `--{_quoted(unknown[0])}`.")
    tier: RiskTier | None = None
    if "tier" in values:
        try:
            tier = RiskTier(values["tier"].lower())
        except ValueError:
            raise UsageError(
                f"Invalid tier `{_quoted(values['tier'])}`: expected "
                "`privileged` or `standard`."
            ) from None
    source: str | None = None
    if "source" in values:
        try:
            source = check_source_name(values["source"])
        except InvalidInputError as error:
            raise UsageError(str(error)) from None
    due_days = 0
    if "due" in values:
        text = values["due"]
        if not text.isascii() or not text.isdigit() or int(text) > MAX_DUE_DAYS:
            raise UsageError(
                f"Invalid --due `{_quoted(text)}`: expected a number of days "
                f"from 0 to {MAX_DUE_DAYS}."
            )
        due_days = int(text)
    return CampaignOptions(tier=tier, source=source, due_days=due_days)
