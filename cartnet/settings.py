"""Settings shared by every node kind: read from flags, environment and `.env`."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NodeSettings(BaseSettings):
    """What every node needs: where it keeps its keys and which swarm it joins."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    data_dir: Path = Field(Path("data/node"), description="Keys, store and models live here")
    swarm_token: str = Field("change-me-swarm-token", min_length=8, description="Shared secret for swarm admission")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR")
