"""A form generated from the preset schema: one `FieldRow` per `config.schema.Field`.

Numbers and strings are `Input`s parsed as you type, choices are `Select`s and booleans
`Switch`es. Each row shows the field's help, its default, and a warning when the engine
ignores it. A valid edit posts `FieldRow.Changed(field, value)`; the screen applies it and
validates the whole preset. Text that does not parse (a typo) is flagged at the field and
posts `FieldRow.TypoChanged`: the screen then refuses to save, since the file would hold a
value other than the one on screen. An emptied field means the field's default (shown as
the placeholder): `Changed` carries `DEFAULT` and the key leaves the file. A value in the
file that is not one of a field's choices stays visible in its Select, with the
validator's error under it.

Text from a preset is shown literally: control characters (ANSI escapes included) are
written as `\\xNN` in the inputs and read back as the character, and nothing is markup.
With `compact` the controls are one line high (see `GroupForm.set_compact`).
"""

from __future__ import annotations

import tomllib
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Input, Label, Select, Static, Switch

from tuitrain.config.writer import toml_key, toml_string
from tuitrain.textfmt import escape_controls, unescape_controls
from tuitrain.ui.glyphs import glyph


class _Default:
    """An emptied field: the key is removed and the default applies."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


def format_value(value: Any) -> str:
    """How a value is written in an Input (TOML-ish, but bare strings; controls as `\\xNN`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(escape_controls(str(v)) for v in value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{escape_controls(toml_key(k))} = {_toml_scalar(v)}" for k, v in value.items()) + "}"
    return escape_controls(str(value))


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape_controls(toml_string(value))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return format_value(value)
    return str(value)


def parse_value(field, text: str) -> Any:
    """The typed value of `text` for `field` (`DEFAULT` when empty); `ValueError` with a readable reason."""
    text = unescape_controls(text.strip())
    kind = field.type
    if text == "":
        return DEFAULT
    if kind == "int":
        try:
            value: Any = int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    elif kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    elif kind == "int|str":
        try:
            value = int(text)
        except ValueError:
            value = text
            if field.choices and value not in field.choices:
                raise ValueError(f"expected a whole number or one of: {', '.join(map(str, field.choices))}") from None
    elif kind == "list[str]":
        value = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [v for v in value if field.choices and v not in field.choices]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not one of: {', '.join(map(str, field.choices))}")
    elif kind == "table":
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"not a TOML inline table: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError("expected an inline table like {key = 1}")
    elif kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        value = text.lower() == "true"
    else:
        value = text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = field.minimum, field.maximum
        if low is not None and (value < low or (field.exclusive_minimum and value == low)):
            raise ValueError(f"must be {'>' if field.exclusive_minimum else '>='} {low:g}")
        if high is not None and (value > high or (field.exclusive_maximum and value == high)):
            raise ValueError(f"must be {'<' if field.exclusive_maximum else '<='} {high:g}")
    return value


def widget_id(field) -> str:
    """A DOM id for a field's control (`field-optimizer-learning_rate`)."""
    return "field-" + f"{field.group}-{field.key}".replace(".", "-")


class FieldRow(Vertical):
    """One field: label and control (its error under it), then help with default and notes.

    The app stylesheet lays the notes under the control in a narrow form and beside it in
    a wide one; both parts are always there.
    """

    class Changed(Message):
        """A field got a new valid value (`DEFAULT`: back to the field's default)."""

        def __init__(self, row: "FieldRow", field, value: Any) -> None:
            super().__init__()
            self.row = row
            self.field = field
            self.value = value

    class TypoChanged(Message):
        """The field's text stopped (or started) parsing: `row.typo` says why, or is None."""

        def __init__(self, row: "FieldRow") -> None:
            super().__init__()
            self.row = row

    def __init__(self, field, value: Any, compact: bool = False) -> None:
        super().__init__(id="row-" + widget_id(field))
        self.field = field
        self.value = value
        self.compact = compact
        self._shown, self._filled = format_value(value), value
        self.typo: str | None = None  # the text typed does not parse: why
        self.problem: str | None = None  # the validator's complaint about the value

    @property
    def field_name(self) -> str:
        """`group.key` of the field."""
        return f"{self.field.group}.{self.field.key}"

    def compose(self) -> ComposeResult:
        field = self.field
        with Horizontal(classes="field-line"):
            yield Label(escape_controls(field.key), classes="field-label", markup=False)
            with Vertical(classes="field-control"):
                yield self._control()
                yield Static("", classes="field-error", markup=False)
        with Vertical(classes="field-notes"):
            yield Static(self._help_text(), classes="field-help", markup=False)
            if not field.honoured:
                note = field.honoured_note or "the engine ignores this field"
                yield Static(escape_controls(f"{glyph(self.app, 'warning')} not used by the engine: {note}"),
                             classes="field-ignored", markup=False)

    def _help_text(self) -> str:
        default = format_value(self.field.default)
        default = default if default != "" else ("none" if self.field.default is None else '""')
        typed = ""
        if self.field.choices and self.field.type != "str":  # no Select lists them
            typed = "; a number or " if self.field.type == "int|str" else "; any of "
            typed += ", ".join(format_value(c) for c in self.field.choices)
        return escape_controls(f"{self.field.help} (default: {default}{typed})", tab=" ")

    def _control(self):
        field, wid = self.field, widget_id(self.field)
        if field.type == "bool" and not field.nullable:
            return Switch(value=bool(self.value), id=wid)
        if field.choices and field.type == "str":  # lists and number-or-word fields are typed
            # Select values are the choices' text (choices may mix bools, numbers and strings).
            self._choices = {format_value(c): c for c in field.choices}
            options = [(text, text) for text in self._choices]
            current = format_value(self.value)
            if self.value is not None and current not in self._choices:
                # a value from the file that is no choice: shown as it is, the validator's error under it
                options.insert(0, (Text(f"{current} (not a choice)"), current))  # Text: never markup
            value = current if self.value is not None else Select.NULL
            return Select(options, value=value, allow_blank=field.nullable or value is Select.NULL, id=wid,
                          compact=self.compact)
        return Input(value=self._shown, placeholder=format_value(field.default), id=wid, compact=self.compact)

    def set_error(self, message: str | None) -> None:
        """Show (or clear) the validator's complaint about this field."""
        self.problem = escape_controls(message, tab=" ") if message else None
        self._show_error()

    def _set_typo(self, message: str | None) -> None:
        before = self.typo
        self.typo = escape_controls(message, tab=" ") if message else None
        self._show_error()
        if self.typo != before:
            self.post_message(self.TypoChanged(self))

    def _show_error(self) -> None:
        error = self.typo or self.problem
        shown = f"{glyph(self.app, 'invalid')} {error}" if error else ""
        self.set_class(bool(shown), "-invalid")
        try:
            self.query_one(".field-error", Static).update(shown)
        except NoMatches:
            pass  # the row is being removed (another group is shown) or not composed yet

    @property
    def error(self) -> str | None:
        """The error shown now (as drawn: control characters escaped), if any."""
        return self.typo or self.problem

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        escaped = escape_controls(event.value)
        if escaped != event.value:
            # Pasted control characters: show them escaped; the next Changed parses that text.
            event.input.value = escaped
            event.input.cursor_position = len(event.input.value)
            return
        if event.value == self._shown:
            # The text as it was filled in (or an edit back to it): the value is unchanged.
            self._set_typo(None)
            value = self._filled
        else:
            try:
                value = parse_value(self.field, event.value)
            except ValueError as exc:
                self._set_typo(str(exc))
                return
            self._set_typo(None)
        if value is not DEFAULT and value == self.value and (value is None) == (self.value is None):
            return  # the initial fill, or an edit back to the same value: nothing to write
        self.value = self.field.default if value is DEFAULT else value
        self.post_message(self.Changed(self, self.field, value))

    def on_switch_changed(self, event: Switch.Changed) -> None:
        event.stop()
        if event.value == self.value:
            return
        self.value = event.value
        self.post_message(self.Changed(self, self.field, event.value))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value not in self._choices and event.value is not Select.NULL:
            return  # the file's own value that is no choice (shown escaped): nothing typed
        value = None if event.value is Select.NULL else self._choices[event.value]
        if value == self.value and type(value) is type(self.value):
            return
        self.value = value
        self.post_message(self.Changed(self, self.field, value))


class FormPage(Vertical):
    """The title, doc and rows of one group (kept while the editor is open)."""

    DEFAULT_CSS = "FormPage { height: auto; }"

    def __init__(self, key: str, fields: list) -> None:
        super().__init__(classes="form-page")
        self.key = key
        self.signature = tuple(f"{f.group}.{f.key}" for f in fields)


class GroupForm(VerticalScroll):
    """The fields of one group at a time: `show(key, …)` builds a group's page on its first
    visit and shows it again after (switching groups is then instant; rows keep their state)."""

    compact = False

    async def show(self, key: str, title: str, doc: str, fields: list, values: dict[str, Any]) -> None:
        """Show group `key` with `fields`, filled from `values` (keyed `group.key`) when built.

        A page whose fields differ from `fields` (the task's options follow the task) is rebuilt.
        """
        page = self._page(key)
        signature = tuple(f"{f.group}.{f.key}" for f in fields)
        if page is not None and page.signature != signature:
            await page.remove()
            page = None
        if page is None:
            page = FormPage(key, fields)
            await self.mount(page)
            rows = [Static(title, classes="form-title", markup=False), Static(doc, classes="form-doc", markup=False)]
            rows += [FieldRow(f, values.get(f"{f.group}.{f.key}", f.default), self.compact) for f in fields]
            await page.mount_all(rows)
        for other in self.query_children(FormPage):
            other.display = other is page
        self.scroll_home(animate=False)

    def _page(self, key: str) -> FormPage | None:
        return next((p for p in self.query_children(FormPage) if p.key == key), None)

    def set_compact(self, compact: bool) -> None:
        """One-line controls (short terminals) or the usual three-line ones, on every page."""
        self.compact = compact
        for row in self.query(FieldRow):
            row.compact = compact
        for control in self.query("FieldRow Input, FieldRow Select"):
            control.compact = compact

    def all_rows(self) -> list[FieldRow]:
        """The rows of every page built so far, in group order."""
        return list(self.query(FieldRow))

    def rows(self) -> dict[str, FieldRow]:
        """The rows shown now, keyed `group.key`."""
        page = next((p for p in self.query_children(FormPage) if p.display), None)
        if page is None:
            return {}
        return {f"{row.field.group}.{row.field.key}": row for row in page.query_children(FieldRow)}
