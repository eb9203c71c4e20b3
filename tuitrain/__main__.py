"""`python -m tuitrain` is the same as the `tuitrain` command."""

from tuitrain.cli import main

raise SystemExit(main())
