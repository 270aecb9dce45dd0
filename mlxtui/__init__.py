"""mlxtui: take a model from the Hugging Face Hub to a shared MLX conversion."""

__version__ = "0.1.0"
