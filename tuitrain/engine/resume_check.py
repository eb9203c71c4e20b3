"""Which preset changes a resumed run honours, and which it refuses: the rules live in
`tuitrain.config.resume_rules`, so a launcher can refuse a fork before it creates anything."""

from tuitrain.config.resume_rules import (  # noqa: F401 - the engine's name for them
    HONOURED_GROUPS,
    HONOURED_ON_FORK,
    HONOURED_ON_RESUME,
    RENAMED,
    check_resume_config,
)
