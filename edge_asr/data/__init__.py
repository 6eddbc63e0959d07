"""Corpus synthesis from TTS engines, augmentation, manifests and voice-disjoint splits."""

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
LABELS = DIGITS + [UNKNOWN, SILENCE]
