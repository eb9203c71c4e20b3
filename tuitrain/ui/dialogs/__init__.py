"""Dialogs a screen opens to ask one question (confirm, a path, a choice); they return the
answer with `dismiss` and navigate nowhere themselves."""
