"""Small, self-contained experiments that check claims made in the notes."""
