"""apis-main's own JSON files (scenario.json, policy.json, hwConfig.json), read unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import DataFileError

__all__ = ["read_apis_json"]


def read_apis_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The content of one of apis-main's JSON files; DataFileError naming the path if bad."""
    where = Path(path)
    try:
        content = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFileError(where, "file not found") from None
    except OSError as exc:
        raise DataFileError(where, f"cannot be read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(where, f"not JSON: {exc.msg}", exc.lineno, exc.colno) from None
    if not isinstance(content, dict):
        raise DataFileError(where, "expected a JSON object at the top")
    return content
