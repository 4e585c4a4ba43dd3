"""The bot object handed to every listener module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient

from bot.directory import Directory
from governance.app import Steward
from governance.settings import Settings


@dataclass
class Bot:
    """What every listener needs: the core, the Web API client and the directory."""

    steward: Steward
    client: WebClient
    directory: Directory
    bolt: App

    @property
    def settings(self) -> Settings:
        return self.steward.settings


Registrar = Callable[[Bot], None]
