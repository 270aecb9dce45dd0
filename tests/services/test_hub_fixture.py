"""The shared demo-Hub fixtures answer the real huggingface_hub client as the docs say."""

from __future__ import annotations

from huggingface_hub import HfApi

from mlxtui.services import Context


def test_ctx_points_the_real_client_at_the_demo_hub(ctx: Context, hub) -> None:
    import huggingface_hub.constants as constants

    assert ctx.endpoint == hub.url
    assert constants.ENDPOINT == hub.url
    me = HfApi(endpoint=ctx.endpoint, token=ctx.token).whoami()
    assert me["name"] == "alice"
    ids = [m.id for m in HfApi(endpoint=hub.url).list_models(author="mlx-community")]
    assert "mlx-community/h2o-danube2-tiny-chat-4bit" in ids


def test_fresh_hub_is_a_separate_copy(fresh_hub, hub) -> None:
    api = HfApi(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    api.create_repo("alice/only-in-fresh")
    assert api.repo_exists("alice/only-in-fresh")
    assert not HfApi(endpoint=hub.url, token=hub.write_token).repo_exists("alice/only-in-fresh")
