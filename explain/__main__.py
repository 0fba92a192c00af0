"""``python -m explain`` is the ``explain`` command."""

from .cli import main

raise SystemExit(main())
