"""Parsing the project's JSON files with errors that say where: file, line, column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pvc.errors import BadInput

__all__ = ["parse_json"]


def parse_json(data: bytes, path: Path | str) -> Any:
    """The parsed document, or BadInput naming the file and the position of the error."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(path, f"malformed JSON: not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BadInput(path, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits; sys.set_int_max_str_digits)
        raise BadInput(path, f"malformed JSON: {exc}") from None
