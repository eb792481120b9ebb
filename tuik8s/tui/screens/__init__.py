"""Screens of the terminal UI: one per view, dialogs as modal screens."""
