"""Typed, pickleable errors of the vision layer (Celery ships exceptions between processes)."""

from __future__ import annotations


class UnreadableImageError(ValueError):
    """The bytes are not a photo we can decode (empty, truncated, not an image, unsupported format).

    ``reason`` is a stable machine-readable code; the message is for people.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class ImageTooLargeError(UnreadableImageError):
    """Declared dimensions exceed the pixel limit (decompression-bomb protection)."""
