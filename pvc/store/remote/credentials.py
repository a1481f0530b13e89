"""AWS credentials from the standard places only: the environment, then a profile of the shared files.

obstore itself reads the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
web identity, container credentials) and falls back to the instance metadata service. What it lacks is the
shared credentials and config files (`~/.aws/credentials`, `~/.aws/config`, AWS_PROFILE), which every AWS SDK
and the aws CLI read: this module reads them. It is the one module below the command line that reads the process
environment (tests/test_layers.py allows it by name): credentials never come from `.pvc/config`, and are never
printed or written anywhere.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

__all__ = ["profile_credentials", "profile_region"]


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _sections() -> tuple[str, configparser.ConfigParser, configparser.ConfigParser]:
    profile = _env("AWS_PROFILE") or _env("AWS_DEFAULT_PROFILE") or "default"
    home = Path.home() / ".aws"
    creds, config = configparser.ConfigParser(), configparser.ConfigParser()
    creds.read(_env("AWS_SHARED_CREDENTIALS_FILE") or home / "credentials")
    config.read(_env("AWS_CONFIG_FILE") or home / "config")
    return profile, creds, config


def _lookup(key: str) -> str | None:
    profile, creds, config = _sections()
    for parser, section in ((creds, profile), (config, profile if profile == "default" else f"profile {profile}")):
        if parser.has_option(section, key):
            return parser.get(section, key).strip() or None
    return None


def profile_credentials():
    """A credential provider for obstore from the shared files' profile, or None when the environment has keys
    (obstore reads them) or no profile holds any (obstore's own chain then applies)."""
    if _env("AWS_ACCESS_KEY_ID"):
        return None
    key, secret = _lookup("aws_access_key_id"), _lookup("aws_secret_access_key")
    if not (key and secret):
        return None
    token = _lookup("aws_session_token")

    def provide() -> dict:
        return {"access_key_id": key, "secret_access_key": secret, "token": token, "expires_at": None}

    return provide


def profile_region() -> str | None:
    """The region of the environment or of the profile (None: the remote's own or obstore's default)."""
    return _env("AWS_REGION") or _env("AWS_DEFAULT_REGION") or _lookup("region")
