"""The engine's HTTP server: fal's queue protocol in front of the offline engine (see protocol reference §7)."""

from __future__ import annotations

from .app import create_app
from .config import ServerConfig
from .processor import EngineProcessor, Processor

__all__ = ["EngineProcessor", "Processor", "ServerConfig", "create_app"]
