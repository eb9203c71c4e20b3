"""`python -m tuitrain.engine RUN_DIR [--resume-from checkpoint-N]`."""

from __future__ import annotations

import sys

from tuitrain.engine import main

if __name__ == "__main__":
    sys.exit(main())
