"""HubService against the demo Hub: paged search, filters and sorts, errors mapped to MlxtuiError kinds, 429 notices."""

from __future__ import annotations

import pytest

from mlxtui.services import Context
from mlxtui.services.errors import GatedError, InvalidInputError, NotFoundError, OfflineError
from mlxtui.services.events import Notice, SearchPage
from mlxtui.services.hub import HubService, SearchQuery, validate_repo_id


async def _page(cursor, n=None) -> tuple[SearchPage, list[Notice]]:
    page, notices = None, []
    async for event in cursor.next_page(n):
        if isinstance(event, Notice):
            notices.append(event)
        else:
            page = event
    assert page is not None
    return page, notices


async def test_search_finds_models_sorted_by_downloads(ctx: Context) -> None:
    page, _ = await _page(HubService(ctx).search(SearchQuery(text="tiny", sort="downloads")))
    ids = [h.repo_id for h in page.hits]
    assert "h2oai/h2o-danube2-tiny-chat" in ids
    downloads = [h.downloads for h in page.hits]
    assert downloads == sorted(downloads, reverse=True)
    danube = next(h for h in page.hits if h.repo_id == "h2oai/h2o-danube2-tiny-chat")
    assert danube.parameters and danube.parameters > 0
    assert danube.last_modified


async def test_search_badges_mlx_and_gated(ctx: Context) -> None:
    page, _ = await _page(HubService(ctx).search(SearchQuery(text="tiny", sort="likes")))
    hits = {h.repo_id: h for h in page.hits}
    assert hits["mlx-community/h2o-danube2-tiny-chat-4bit"].mlx
    assert not hits["h2oai/h2o-danube2-tiny-chat"].mlx
    assert hits["meta-llama/Llama-3.2-tiny-Instruct"].gated
    likes = [h.likes for h in page.hits]
    assert likes == sorted(likes, reverse=True)


@pytest.mark.parametrize("sort", ["downloads", "likes", "trending", "updated"])
async def test_every_sort_is_accepted(ctx: Context, sort: str) -> None:
    page, _ = await _page(HubService(ctx).search(SearchQuery(text="tiny", sort=sort)))
    assert page.hits


def test_unknown_sort_is_refused(ctx: Context) -> None:
    with pytest.raises(InvalidInputError):
        HubService(ctx).search(SearchQuery(sort="random"))


async def test_author_and_library_filters(ctx: Context) -> None:
    service = HubService(ctx)
    page, _ = await _page(service.search(SearchQuery(author="mlx-community")))
    assert page.hits and all(h.repo_id.startswith("mlx-community/") for h in page.hits)
    page, _ = await _page(service.search(SearchQuery(library="mlx")))
    assert page.hits and all(h.mlx for h in page.hits)


async def test_pages_load_one_at_a_time(fresh_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_hub.page_size = 3  # the server's page: a new request only when the client runs past it
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    cursor = HubService(ctx).search(SearchQuery(text="tiny"), page_size=3)
    fresh_hub.clear_requests()
    first, _ = await _page(cursor)
    assert len(first.hits) == 3 and not first.done
    assert fresh_hub.count_requests("GET", "/api/models") == 1
    second, _ = await _page(cursor)
    assert len(second.hits) == 3 and second.offset == 3
    assert not {h.repo_id for h in first.hits} & {h.repo_id for h in second.hits}
    assert fresh_hub.count_requests("GET", "/api/models") == 2


async def test_search_rate_limited_is_retried_with_a_notice(fresh_hub) -> None:
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    fresh_hub.faults.rate_limit(1, path_prefix="/api/models", method="GET", retry_after=0)
    page, notices = await _page(HubService(ctx).search(SearchQuery(text="danube")))
    assert page.hits
    assert any(n.text.startswith("rate limited, retrying in") for n in notices)


async def test_model_info_rate_limited_honours_retry_after(fresh_hub) -> None:
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    fresh_hub.faults.rate_limit(1, path_prefix="/api/models/h2oai/h2o-danube2-tiny-chat", retry_after=1)
    events = [e async for e in HubService(ctx).model_info("h2oai/h2o-danube2-tiny-chat")]
    assert any(isinstance(e, Notice) and e.text == "rate limited, retrying in 1 s" for e in events)
    assert events[-1].id == "h2oai/h2o-danube2-tiny-chat"


@pytest.mark.parametrize("bad", ["", "a b/c", "org/na me", "org//name", "../etc", "org/name/extra", "x" * 200])
def test_invalid_repo_ids_are_refused_before_any_request(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        validate_repo_id(bad)


async def test_invalid_repo_id_makes_no_request(fresh_hub) -> None:
    ctx = Context(endpoint=fresh_hub.url, token=fresh_hub.write_token)
    fresh_hub.clear_requests()
    with pytest.raises(InvalidInputError):
        [e async for e in HubService(ctx).model_info("not a repo!")]
    assert fresh_hub.count_requests() == 0


async def test_unknown_repo_says_private_and_login_state(hub) -> None:
    anonymous = Context(endpoint=hub.url)
    with pytest.raises(NotFoundError) as error:
        [e async for e in HubService(anonymous).model_info("nobody/nothing-here")]
    assert "may also be private" in str(error.value) and "not logged in" in str(error.value)
    alice = Context(endpoint=hub.url, token=hub.write_token)
    with pytest.raises(NotFoundError) as error:
        [e async for e in HubService(alice).model_info("nobody/nothing-here")]
    assert "logged in as alice" in str(error.value)


async def test_private_repo_of_someone_else_is_not_found(hub) -> None:
    bob = Context(endpoint=hub.url, token=hub.other_token)
    with pytest.raises(NotFoundError):
        [e async for e in HubService(bob).model_info("alice/danube-tiny-experiments")]


async def test_unreachable_hub_is_offline(tmp_path) -> None:
    ctx = Context(endpoint="http://127.0.0.1:9")
    with pytest.raises(OfflineError) as error:
        [e async for e in HubService(ctx).model_info("h2oai/h2o-danube2-tiny-chat")]
    assert "Can't reach" in str(error.value) and "cached" in str(error.value)
    with pytest.raises(OfflineError):
        [e async for e in HubService(ctx).search(SearchQuery(text="x")).next_page()]


async def test_gated_files_say_how_to_get_access(hub) -> None:
    bob = Context(endpoint=hub.url, token=hub.other_token)
    events = [e async for e in HubService(bob).fetch_model_files("meta-llama/Llama-3.2-tiny-Instruct",
                                                                 conversions=False)]
    notices = [e.text for e in events if isinstance(e, Notice)]
    assert any("gated" in n and "accept the conditions" in n and "HF_TOKEN" in n for n in notices)
    files = events[-1]
    assert files.config_text and "llama" in files.config_text  # model_info still carries the config


def test_map_error_gated_kind(hub) -> None:
    import httpx2
    from huggingface_hub.errors import GatedRepoError

    response = httpx2.Response(403, request=httpx2.Request("GET", f"{hub.url}/org/x/resolve/main/config.json"))
    error = HubService(Context(endpoint=hub.url)).map_error(GatedRepoError("gated", response=response), "org/x")
    assert isinstance(error, GatedError) and "accept the conditions" in str(error)


async def test_existing_conversions_found_with_quantization_and_version(ctx: Context) -> None:
    result = [e async for e in HubService(ctx).existing_conversions("h2oai/h2o-danube2-tiny-chat")][-1]
    by_id = {c["repo_id"]: c for c in result}
    conv = by_id["mlx-community/h2o-danube2-tiny-chat-4bit"]
    assert conv["quantization"] == "4bit" and conv["bits"] == 4
    assert conv["mlx_lm_version"]
