"""``python -m actors``: see :mod:`actors._cli`."""

from ._cli import main

raise SystemExit(main())
