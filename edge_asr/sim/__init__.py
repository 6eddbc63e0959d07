"""The bit-exact simulator of a converted design. Needs numpy only."""
