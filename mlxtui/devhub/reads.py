"""Read routes of the API: whoami, listing, model_info, tree, paths-info, refs, commits, resolve.

Every route after the listing serves models and datasets alike: its `repo` is the store key (`repo_key`),
owner/name for a model or datasets/owner/name for a dataset, and the answer names the plain id.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from mlxtui.devhub.auth import ApiBase
from mlxtui.devhub.info import repo_facts
from mlxtui.devhub.plumbing import HubError, int_param, truthy
from mlxtui.devhub.store import EntryNotFound, FileEntry, HubStore, RepoNotFound, RevisionNotFound, split_key

__all__ = ["ReadRoutes"]


class ReadRoutes(ApiBase):
    """GET routes (and paths-info's POST): what the client reads."""

    # --------------------------------------------------------------- whoami
    def h_whoami(self) -> None:
        caller = self.caller()
        if caller.user is None:
            raise HubError(401, "Unauthorized", "Invalid credentials in Authorization header",
                           body={"error": "Invalid user token"})
        role = caller.role
        self.send_json({
            "type": "user",
            "id": hashlib.sha1(caller.user.encode()).hexdigest()[:24],
            "name": caller.user,
            "fullname": caller.user,
            "email": f"{caller.user}@devhub.local",
            "emailVerified": True,
            "canPay": False,
            "isPro": False,
            "periodEnd": None,
            "avatarUrl": "",
            "orgs": [
                {"type": "org", "name": org, "fullname": org, "roleInOrg": "admin" if role == "write" else "read",
                 "isEnterprise": False, "avatarUrl": ""}
                for org in caller.orgs
            ],
            "auth": {"type": "access_token", "accessToken": {"displayName": "devhub", "role": role,
                                                            "createdAt": "2024-01-01T00:00:00.000Z"}},
        })

    # --------------------------------------------------------------- listing
    def h_list_models(self) -> None:
        caller = self.caller()
        q = self.query
        store = self.hub.store
        search = (q.get("search", [""])[0] or "").lower()
        author = q.get("author", [""])[0]
        filters = [f for f in q.get("filter", []) if f]
        pipeline = q.get("pipeline_tag", [""])[0]
        library = q.get("library", [""])[0]
        gated_param = q.get("gated", [""])[0].lower()
        sort_key = q.get("sort", [""])[0] or "trendingScore"
        items = []
        for repo in store.list_repos():
            try:
                meta = store.meta(repo)
                sha = store.resolve_revision(repo, "main")
            except (RepoNotFound, RevisionNotFound):
                continue
            if not self.visible(meta, caller):
                continue
            if search and search not in repo.lower():
                continue
            if author and meta["owner"].lower() != author.lower():
                continue
            facts = repo_facts(store, repo, sha)
            if not all(_filter_matches(f, facts, meta) for f in filters):
                continue
            if pipeline and facts.pipeline_tag != pipeline:
                continue
            if library and not _filter_matches(f"library:{library}", facts, meta):
                continue
            if gated_param in ("true", "false") and bool(meta.get("gated")) != (gated_param == "true"):
                continue
            items.append((repo, meta, sha, facts))
        if sort_key not in ("downloads", "likes", "trendingScore", "lastModified", "createdAt", "id"):
            raise HubError(400, "BadRequest", f"Invalid sort key: {sort_key}")
        if sort_key == "id":
            items.sort(key=lambda item: item[0])
        else:
            items.sort(key=lambda item: item[0])
            items.sort(key=lambda item: item[1].get(sort_key) or 0, reverse=True)

        full = truthy(q.get("full", [""])[0])
        with_card = truthy(q.get("cardData", [""])[0])
        with_config = truthy(q.get("config", [""])[0])
        expand = [e for e in q.get("expand", []) if e]
        offset, limit = int_param(q, "cursor", 0), int_param(q, "limit", None)
        total = len(items) if limit is None else min(len(items), limit)
        page = items[offset : min(total, offset + self.hub.page_size)]
        out = []
        for repo, meta, sha, facts in page:
            full_info = self.model_json(repo, meta, sha, facts, blobs=False)
            if expand:
                out.append(_expanded(full_info, expand))
                continue
            keys = ["_id", "id", "likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
                    "library_name", "createdAt", "modelId"]
            if full:
                keys += ["author", "sha", "lastModified", "gated", "disabled", "siblings"]
            if with_card:
                keys.append("cardData")
            if with_config:
                keys.append("config")
            out.append({k: full_info[k] for k in keys if k in full_info})
        headers = {}
        if offset + len(page) < total:
            params = [(k, v) for k, values in q.items() if k != "cursor" for v in values]
            params.append(("cursor", str(offset + len(page))))
            headers["Link"] = f'<{self.base_url()}/api/models?{urlencode(params)}>; rel="next"'
        self.send_json(out, headers=headers)

    # ------------------------------------------------------------ model_info
    def h_model_info(self, repo: str, rev: str | None = None) -> None:
        caller = self.caller()
        meta = self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        facts = repo_facts(self.hub.store, repo, sha)
        blobs = truthy(self.query.get("blobs", [""])[0])
        info = self.model_json(repo, meta, sha, facts, blobs=blobs)
        expand = [e for e in self.query.get("expand", []) if e]
        self.send_json(_expanded(info, expand) if expand else info)

    def model_json(self, repo: str, meta: dict[str, Any], sha: str, facts: Any, *, blobs: bool) -> dict[str, Any]:
        """model_info's answer (dataset_info's for a dataset's key: the same, less what only models have)."""
        store = self.hub.store
        key, (repo_type, repo) = repo, split_key(repo)
        record = store.commit_record(key, sha)
        siblings = []
        for path, entry in sorted(store.files(key, sha).items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling["size"] = entry.size
                sibling["blobId"] = entry.oid
                if entry.lfs:
                    sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo.encode()).hexdigest()[:24],
            "id": repo,
            "modelId": repo,
            "author": meta["owner"],
            "sha": sha,
            "lastModified": record.get("date") or meta.get("lastModified"),
            "createdAt": meta.get("createdAt"),
            "private": bool(meta.get("private")),
            "gated": meta.get("gated", False),
            "disabled": False,
            "downloads": int(meta.get("downloads", 0)),
            "likes": int(meta.get("likes", 0)),
            "trendingScore": meta.get("trendingScore", meta.get("likes", 0)),
            "library_name": facts.library_name,
            "tags": list(facts.tags),
            "pipeline_tag": facts.pipeline_tag,
            "siblings": siblings,
            "spaces": [],
            "usedStorage": facts.used_storage,
        }
        if facts.card_data is not None:
            info["cardData"] = facts.card_data
        if facts.config is not None:
            info["config"] = facts.config
        if facts.safetensors is not None:
            info["safetensors"] = facts.safetensors
        if info["library_name"] is None:
            del info["library_name"]
        if info["pipeline_tag"] is None:
            del info["pipeline_tag"]
        if repo_type == "dataset":
            for model_only in ("modelId", "library_name", "pipeline_tag", "config", "safetensors", "spaces"):
                info.pop(model_only, None)
        return info

    # ------------------------------------------------------------------ tree
    def h_tree(self, repo: str, rev: str, path: str | None = None) -> None:
        caller = self.caller()
        self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        store = self.hub.store
        files = store.files(repo, sha)
        prefix = (path or "").strip("/")
        recursive = truthy(self.query.get("recursive", [""])[0])
        expand = truthy(self.query.get("expand", [""])[0])
        entries = _tree_entries(files, prefix, recursive)
        if entries is None:
            raise HubError(404, "EntryNotFound", f"Entry not found: {prefix}", {"X-Repo-Commit": sha})
        offset = int_param(self.query, "cursor", 0)
        page = entries[offset : offset + self.hub.page_size]
        last_commits = _last_commits(store, repo, sha) if expand else {}
        out = [self.tree_json(item, files, last_commits, expand) for item in page]
        headers = {}
        if offset + len(page) < len(entries):
            params = [(k, v) for k, values in self.query.items() if k != "cursor" for v in values]
            params.append(("cursor", str(offset + len(page))))
            headers["Link"] = f'<{self.base_url()}{self.raw_path}?{urlencode(params)}>; rel="next"'
        self.send_json(out, headers=headers)

    def tree_json(self, item: tuple[str, str], files: dict[str, FileEntry], last_commits: dict[str, dict],
                  expand: bool) -> dict[str, Any]:
        kind, path = item
        if kind == "directory":
            children = sorted(e.oid + p for p, e in files.items() if p.startswith(path + "/"))
            out: dict[str, Any] = {"type": "directory", "path": path,
                                   "oid": hashlib.sha1("".join(children).encode()).hexdigest()}
        else:
            entry = files[path]
            out = {"type": "file", "path": path, "oid": entry.oid, "size": entry.size}
            if entry.lfs:
                out["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        if expand:
            commit = last_commits.get(path)
            if commit is None and kind == "directory":
                commit = max((c for p, c in last_commits.items() if p.startswith(path + "/")),
                             key=lambda c: c["date"], default=None)
            if commit is not None:
                out["lastCommit"] = commit
        return out

    def h_paths_info(self, repo: str, rev: str) -> None:
        caller = self.caller()
        self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        if "json" in self.headers.get("Content-Type", ""):
            data = self.json_body()
            paths, expand = data.get("paths", []), bool(data.get("expand"))
        else:
            try:
                form = parse_qs(self.read_body().decode("utf-8"), keep_blank_values=True, max_num_fields=10_000)
            except ValueError:
                raise HubError(400, "BadRequest", "paths-info: the form body is not UTF-8 or has too many fields") from None
            paths, expand = form.get("paths", []), truthy(form.get("expand", [""])[0])
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise HubError(400, "BadRequest", "paths-info: 'paths' must be a list of strings")
        files = self.hub.store.files(repo, sha)
        last = _last_commits(self.hub.store, repo, sha) if expand else {}
        out = []
        for p in paths:
            p = p.strip("/")
            if p in files:
                out.append(self.tree_json(("file", p), files, last, expand))
            elif any(f.startswith(p + "/") for f in files):
                out.append(self.tree_json(("directory", p), files, last, expand))
        self.send_json(out)

    def h_refs(self, repo: str) -> None:
        self.repo_meta(repo, self.caller())
        refs = self.hub.store.refs(repo)
        self.send_json({
            "branches": [{"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha} for name, sha in refs.items()],
            "converts": [], "tags": [],
        })

    def h_commits(self, repo: str, rev: str) -> None:
        self.repo_meta(repo, self.caller())
        sha = self.resolve_sha(repo, rev)
        out = [
            {"id": c["sha"], "title": c["title"], "message": c["message"], "date": c["date"],
             "authors": [{"user": c["author"]}]}
            for c in self.hub.store.history(repo, sha)
        ]
        self.send_json(out)

    # --------------------------------------------------------------- resolve
    def h_resolve(self, repo: str, rev: str, path: str) -> None:
        caller = self.caller()
        meta = self.repo_meta(repo, caller)
        sha = self.resolve_sha(repo, rev)
        store = self.hub.store
        try:
            entry = store.entry(repo, sha, path)
        except EntryNotFound:
            raise HubError(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha}) from None
        if path not in ("README.md", ".gitattributes") and not self.may_download(meta, caller):
            repo_type, plain = split_key(repo)
            if caller.user is None:
                message = (f"Access to {repo_type} {plain} is restricted. You must have access to it and be "
                           "authenticated to access it. Please log in.")
                raise HubError(401, "GatedRepo", message, {"X-Repo-Commit": sha})
            message = (f"Access to {repo_type} {plain} is restricted and you are not in the authorized list. "
                       f"Visit {self.base_url()}/{repo} to ask for access.")
            raise HubError(403, "GatedRepo", message, {"X-Repo-Commit": sha})
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{entry.etag}"',
            "Content-Disposition": f'inline; filename="{entry.path.rsplit("/", 1)[-1]}"',
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        if entry.lfs and entry.size >= self.hub.redirect_threshold:
            location = self.hub.cdn_link(repo, rev, entry, hostname=urlsplit(self.base_url()).hostname)
            headers.update({"Location": location, "ETag": f'"{entry.oid}"'})
            self.send(302, f"Found. Redirecting to {location}".encode(), headers, "text/plain; charset=utf-8")
            return
        self.serve_blob(store.blob_path(entry.sha256), entry.size, headers, unquote(self.raw_path))


def _expanded(info: dict[str, Any], expand: list[str]) -> dict[str, Any]:
    """Keep only the requested properties (plus the id), as the Hub does for `expand`."""
    out = {"_id": info["_id"], "id": info["id"]}
    for key in expand:
        if key in info:
            out[key] = info[key]
    return out


def _filter_matches(value: str, facts: Any, meta: dict[str, Any]) -> bool:
    """A `filter` value: a tag, or a `kind:value` form (library:, pipeline_tag:, license:, language:...)."""
    tags = {t.lower() for t in facts.tags}
    value_l = value.lower()
    if value_l in tags:
        return True
    kind, _, rest = value_l.partition(":")
    if not rest:
        return False
    if kind == "library":
        return (facts.library_name or "").lower() == rest or rest in tags
    if kind in ("pipeline_tag", "task"):
        return (facts.pipeline_tag or "").lower() == rest
    if kind == "language":
        return rest in tags
    if kind == "author":
        return meta["owner"].lower() == rest
    return False


def _tree_entries(files: dict[str, FileEntry], prefix: str, recursive: bool) -> list[tuple[str, str]] | None:
    """(kind, path) entries under `prefix`; None when the folder does not exist."""
    base = prefix + "/" if prefix else ""
    if prefix and not any(p.startswith(base) for p in files):
        return None
    dirs: set[str] = set()
    out_files: list[str] = []
    for path in files:
        if not path.startswith(base):
            continue
        rest = path[len(base):]
        parts = rest.split("/")
        if recursive:
            for i in range(1, len(parts)):
                dirs.add(base + "/".join(parts[:i]))
            out_files.append(path)
        elif len(parts) == 1:
            out_files.append(path)
        else:
            dirs.add(base + parts[0])
    entries = [("directory", d) for d in dirs] + [("file", f) for f in out_files]
    entries.sort(key=lambda e: e[1])
    return entries


def _last_commits(store: HubStore, repo: str, sha: str) -> dict[str, dict[str, Any]]:
    """path -> {id, title, date} of the last commit that changed each file (cached per commit)."""
    key = (repo, sha, "last_commits")
    cached = store.derived_cache.get(key)
    if cached is not None:
        return cached
    history = store.history(repo, sha)
    out: dict[str, dict[str, Any]] = {}
    for index, record in enumerate(history):
        parent_files = history[index + 1]["files"] if index + 1 < len(history) else {}
        for path, entry in record["files"].items():
            if path not in out and parent_files.get(path) != entry:
                out[path] = {"id": record["sha"], "title": record["title"], "date": record["date"]}
    store.derived_cache[key] = out
    return out
