"""Textual widgets of the tuitrain UI (charts, tables, log tail, forms)."""
