"""Sweeps: one preset trained over a grid, zipped rows and random draws of its settings.

`spec` (what varies), `expand` (the members, each checked), `store` (`sweep.json`), `queue`
(launch, stop, resume; the detached queue process is `runner`), `results` (a row per member).
No torch: the app and the CLI import this package.
"""
