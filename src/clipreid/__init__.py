"""CLIP-ReID: re-identification with CLIP and learned identity prompts.

``clipreid.load_model(path)`` loads a model file (``models/reid.pt``, or one written by
``clipreid import-official``) in eval mode, from the config the file carries."""

__version__ = "0.1.0"
__all__ = ["load_model"]


def __getattr__(name):
    # Lazy, so that `import clipreid` (every stage's start) imports neither torch nor the
    # model code: no stage reaches the model through here.
    if name == "load_model":
        import importlib

        return importlib.import_module("clipreid.model.saved").load_model
    raise AttributeError(f"module 'clipreid' has no attribute {name!r}")
