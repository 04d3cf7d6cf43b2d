"""Model: CLIP backbone loading and adaptation, prompt learner and text encoder, re-ID head."""

from clipreid.model.reid import ClipReID, build_reid_model

__all__ = ["ClipReID", "build_reid_model"]
