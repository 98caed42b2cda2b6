"""TG-Matrix ai service: knowledge (hybrid RAG with citations), generation, memory and providers."""

__version__ = "0.1.0"
