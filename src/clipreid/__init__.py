"""CLIP-ReID: re-identification with CLIP and learned identity prompts."""

__version__ = "0.1.0"
