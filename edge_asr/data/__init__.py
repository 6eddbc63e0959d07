"""Corpus synthesis from TTS engines, augmentation, manifests and voice-disjoint splits."""

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
LABELS = DIGITS + [UNKNOWN, SILENCE]
# Spoken around digits (dates): other words for training voices and in the human set.
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
