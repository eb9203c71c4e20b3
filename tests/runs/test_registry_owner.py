"""The registry lists only the user's own run dirs unless asked for everyone's."""

from __future__ import annotations

import os

import pytest

from tuitrain.cli import main

from .conftest import make_run

OTHER_UID = 65534  # nobody


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_runs_of_another_user_are_ignored_unless_asked(isolated, capsys):
    make_run(isolated, "mine")
    theirs = make_run(isolated, "theirs")
    for path in (theirs, *theirs.iterdir()):
        os.chown(path, OTHER_UID, OTHER_UID)

    assert main(["ls"]) == 0
    listed = capsys.readouterr().out
    assert "mine" in listed and "theirs" not in listed

    assert main(["ls", "--all-users"]) == 0
    assert "theirs" in capsys.readouterr().out
