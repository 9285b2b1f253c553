"""Explanations the notes draw by hand, computed from the real models."""
