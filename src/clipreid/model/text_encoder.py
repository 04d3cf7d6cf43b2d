"""Stage-1 prompts: per-identity learnable tokens inside a fixed template, read by CLIP's
(frozen) text transformer."""

from __future__ import annotations

import torch
from torch import nn

from clipreid.model.backbone import import_clip

NUM_PROMPT_TOKENS = 4
PLACEHOLDER = "X"


def prompt_template(object_noun: str) -> str:
    """"A photo of a X X X X person." ("vehicle" for vehicle data sets)."""
    return f"A photo of a {' '.join([PLACEHOLDER] * NUM_PROMPT_TOKENS)} {object_noun}."


def tokenize(text: str, context_length: int) -> torch.Tensor:
    """clip's BPE tokenisation of one string, padded to ``context_length`` -> (1, L)."""
    return import_clip().tokenize([text], context_length=context_length)


def placeholder_positions(tokens: torch.Tensor) -> list[int]:
    """Positions of the placeholder tokens in a tokenised template."""
    placeholder_id = import_clip().tokenize([PLACEHOLDER])[0, 1].item()
    return [i for i, t in enumerate(tokens[0].tolist()) if t == placeholder_id]


class PromptLearner(nn.Module):
    """Holds ``num_classes x 4`` learnable token vectors (normal, std 0.02) and builds, for
    given labels, the template's embeddings with the placeholders replaced by them."""

    def __init__(self, num_classes: int, token_embedding: nn.Embedding, object_noun: str,
                 context_length: int):
        super().__init__()
        tokens = tokenize(prompt_template(object_noun), context_length)
        positions = placeholder_positions(tokens)
        start = positions[0]
        if positions != list(range(start, start + NUM_PROMPT_TOKENS)):
            raise ValueError(f"template tokenised with placeholders at {positions}")
        with torch.no_grad():
            embedded = token_embedding(tokens).float()
        width = embedded.shape[-1]
        self.ctx = nn.Parameter(torch.empty(num_classes, NUM_PROMPT_TOKENS, width))
        nn.init.normal_(self.ctx, std=0.02)
        # Saved with the prompts, so that they always travel with the vectors they frame.
        self.register_buffer("tokens", tokens)
        self.register_buffer("prefix", embedded[:, :start])
        self.register_buffer("suffix", embedded[:, start + NUM_PROMPT_TOKENS :])

    @property
    def eot_index(self) -> int:
        """Position of the end-of-text token (the highest token id)."""
        return int(self.tokens.argmax(dim=-1).item())

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        b = labels.shape[0]
        return torch.cat(
            [
                self.prefix.expand(b, -1, -1),
                self.ctx[labels],
                self.suffix.expand(b, -1, -1),
            ],
            dim=1,
        )


class TextEncoder(nn.Module):
    """CLIP's text transformer over prompt embeddings: + positional embedding ->
    transformer -> ln_final -> end-of-text position -> text projection."""

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    def forward(self, prompts: torch.Tensor, eot_index: int) -> torch.Tensor:
        # CLIP's text attention is causal, so positions after the end-of-text token cannot
        # change its output: running only the first eot_index + 1 positions is exact, and
        # about 6x cheaper for the 12-token template than the full 77-token context.
        length = eot_index + 1
        x = prompts[:, :length] + self.positional_embedding[:length].to(prompts.dtype)
        x = self.transformer(x.transpose(0, 1)).transpose(0, 1)
        x = self.ln_final(x)
        return x[:, eot_index] @ self.text_projection
