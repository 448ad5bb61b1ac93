"""``python -m rfabric`` = the ``rfabric`` command."""

from rfabric.cli import main

raise SystemExit(main())
