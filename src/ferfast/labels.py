"""Emotion labels in FER2013 order (the output order of every 7-class ferfast model)."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
