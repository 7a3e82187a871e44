"""``python -m apis_emulator``."""

from .cli import main

raise SystemExit(main())
