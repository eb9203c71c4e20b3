"""The Textual app (`tuitrain` with no arguments). Never imports torch or the engine."""
