"""Settings shared by every node kind: read from flags, environment and `.env`."""

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PUBLISHED_TOKENS = frozenset(
    {
        "change-me-swarm-token",
        "local-swarm-token",
        "simulation-swarm-token",
        "test-swarm-token",
        "bench-swarm-token",
        "compose-health-token",
    }
)
"""SWARM_TOKEN values printed in fedcart's own files (examples, old defaults, tests): known to anyone."""
SECRET_WORDS = ("token", "secret", "password", "mongo_url")
"""A setting whose name holds one of these may carry a secret: an error about it never repeats its value."""


class NodeSettings(BaseSettings):
    """What every node needs: where it keeps its keys (and its swarm certificate) and an optional extra secret."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(
        Path("data/node"), description="Keys, swarm certificate (fedcart enrol), store and models live here"
    )
    tls_ca: str = Field(
        "",
        description="PEM file of the CAs trusted when dialing https:// or wss:// (or 'system' for the system's store); "
        "empty = the swarm's TLS CA from DATA_DIR/tls/ca.pem (fedcart enrol writes it), else the system's store",
    )
    swarm_token: str = Field(
        "",
        description="Optional shared secret checked at admission on top of the certificate; empty = off",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="DEBUG, INFO, WARNING, ERROR")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, level: object) -> object:
        """`LOG_LEVEL=debug` means DEBUG, as the logging module reads it."""
        return level.strip().upper() if isinstance(level, str) else level

    @field_validator("tls_ca")
    @classmethod
    def _trust_file_exists(cls, value: str) -> str:
        """A CA file that is not there would make every TLS dial fail later: say so at start."""
        if value and value != "system" and not Path(value).is_file():
            raise ValueError("TLS_CA must be a PEM file of CA certificates, 'system', or empty (the swarm's CA)")
        return value

    @field_validator("swarm_token")
    @classmethod
    def _no_published_token(cls, token: str) -> str:
        """A published token keeps no one out: refuse to start on one rather than pretend it protects."""
        if token in PUBLISHED_TOKENS:
            raise ValueError(
                f"SWARM_TOKEN is {token!r}, a value published with fedcart, so it keeps no one out. "
                "Swarm admission is by certificate now (fedcart authority init, then fedcart enrol): "
                "remove SWARM_TOKEN from .env and the environment, or set a secret of your own as an extra check"
            )
        if token and len(token) < 8:
            raise ValueError("SWARM_TOKEN, when set, must be at least 8 characters (empty turns it off)")
        return token


def describe_error(exc: ValidationError) -> str:
    """A settings error as one line: each bad setting by its environment name, the value given and what is wrong.

    `UI_PORT='abc': Input should be a valid integer; VAL_FRACTION=3: Input should be less than 1`. A rule over
    several settings (no single field) reads as its own message. Values of secrets (tokens, passwords, database
    URLs) are never repeated.
    """
    parts = []
    for error in exc.errors(include_url=False):
        message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
        names = [str(part) for part in error["loc"]]
        if not names:
            parts.append(message)
            continue
        name = names[0].upper() + "".join(f"[{part}]" for part in names[1:])
        shown = "input" in error and not isinstance(error["input"], dict) and not _secret(names[0])
        parts.append(f"{name}={error['input']!r}: {message}" if shown else f"{name}: {message}")
    return "; ".join(parts)


def _secret(field: str) -> bool:
    return any(word in field for word in SECRET_WORDS)
