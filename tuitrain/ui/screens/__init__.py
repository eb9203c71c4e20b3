"""The app's screens: runs (home), preset editor, new run, dashboard, compare, help, confirm."""
