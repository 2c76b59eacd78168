"""folkgen's Textual app. Imports nothing heavy: torch loads in the background after first frame."""
