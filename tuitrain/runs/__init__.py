"""Run directories, detached launch, registry, state and the incremental metrics reader.

No torch, no textual: the UI and the CLI use this package to find and control runs.
"""
