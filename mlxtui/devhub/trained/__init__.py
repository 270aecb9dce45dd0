"""A tiny Llama trained on mlxtui's built-in text (scripts/train_tiny_model.py), shipped with the package.

The demo Hub serves it as a model whose replies read as text, and the tests measure quantization quality on
it (on random weights such figures mean nothing). Float32, about 1M parameters, 3.7 MB.
"""

from pathlib import Path

__all__ = ["TRAINED_MODEL", "TRAINED_DEMO_REPO"]

TRAINED_MODEL = Path(__file__).parent / "tiny-trained-llama"
#: its repo on the demo Hub
TRAINED_DEMO_REPO = "mlxtui/tiny-trained-llama"
