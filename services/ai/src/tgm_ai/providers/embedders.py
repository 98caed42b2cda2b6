"""The embedder in force: chosen by the AI settings (`embeddingProvider`), read by knowledge.

The provider service sets it whenever the settings change; knowledge asks it for vectors and for the
model name its stored vectors must match.
"""

from __future__ import annotations

from .base import Embedder
from .openai import OpenAiProvider


class EmbedderSource:
    """Holds the embedder in force (or None) and its model name."""

    def __init__(self) -> None:
        self.embedder: Embedder | None = None

    @property
    def model(self) -> str | None:
        return self.embedder.model if self.embedder else None


class OpenAiEmbedder:
    """Embeddings of the configured OpenAI-compatible endpoint, named by its embedding model."""

    name = "openai"

    def __init__(self, provider: OpenAiProvider) -> None:
        self._p = provider
        self.model = f"openai:{provider.embedding_model}"

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await self._p.embed(texts)
