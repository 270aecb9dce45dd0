"""The Textual UI: thin panes over mlxtui.services. Never imports mlx, mlx_lm or huggingface_hub."""
