"""The upload preflight tried as an attacker and a careless user would: links, secret shapes, file names, casing.

Each class is tried with several instances through the real preflight (the real huggingface_hub client against
a devhub), and the pure scanner is tried on the shapes a stream can take (chunk borders, big files, what follows
a token). Nothing here may reach the Hub: the tests that try to upload check the repo stays empty.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlxtui.services import Context, configure_hub_environment
from mlxtui.services.upload import UploadService
from mlxtui.services.upload_scan import LocalFile, scan_bytes, scan_file, secret_name, walk_folder

pytestmark = pytest.mark.usefixtures("restore_hub_environment")

SOURCE = "h2oai/h2o-danube2-tiny-chat"
TOKEN = "hf_" + "Zq9xW2" * 6  # 36 characters after hf_, like a real one


@pytest.fixture(scope="module")
def ready_template(mlx_folder_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The converted folder with a lint-clean card, built once."""
    from mlxtui.services.card import CardService

    target = tmp_path_factory.mktemp("adversarial") / mlx_folder_template.name
    shutil.copytree(mlx_folder_template, target)
    service = CardService(Context(endpoint="http://127.0.0.1:9"))
    text, _ = asyncio.run(service.build(target, existing=(target / "README.md").read_text()))
    (target / "README.md").write_text(text)
    return target


@pytest.fixture
def folder(ready_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models" / ready_template.name
    shutil.copytree(ready_template, target)
    return target


@pytest.fixture
def hubx(devhub_factory, source_folder: Path):
    hub = devhub_factory()
    hub.import_folder(SOURCE, source_folder)
    configure_hub_environment(hub.url)
    return hub


def service(hub) -> UploadService:
    return UploadService(Context(endpoint=hub.url, token=hub.write_token))


def checks(plan) -> dict:
    return {c.name: c for c in plan.checks}


async def test_the_clean_folder_passes(hubx, folder: Path) -> None:
    plan = await service(hubx).preflight(folder, "alice/clean")
    assert plan.ok, plan.errors
    assert "Secrets" in checks(plan) and checks(plan)["Secrets"].status == "ok"


# --- links ------------------------------------------------------------------------------------------------


def _outside(tmp_path: Path) -> Path:
    secret = tmp_path / "home" / ".ssh" / "some_key"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
    return secret


LINKS = {
    "absolute": lambda folder, secret: (folder / "vocab.txt", secret),
    "relative": lambda folder, secret: (folder / "vocab.txt", Path(os.path.relpath(secret, folder))),
    "in a subfolder": lambda folder, secret: (folder / "extra" / "notes.md", Path(os.path.relpath(secret, folder / "extra"))),
    "padded dots": lambda folder, secret: (folder / "merges.txt", Path("./../" + os.path.relpath(secret, folder.parent))),
    "to a system file": lambda folder, secret: (folder / "added_tokens.json", Path("/etc/passwd")),
    "broken": lambda folder, secret: (folder / "special.json", folder.parent / "nowhere" / "x.json"),
}


@pytest.mark.parametrize("spelling", list(LINKS))
async def test_a_link_leaving_the_folder_is_named_refused_and_never_read(hubx, folder: Path, tmp_path: Path,
                                                                        spelling: str) -> None:
    secret = _outside(tmp_path)
    link, target = LINKS[spelling](folder, secret)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    plan = await service(hubx).preflight(folder, "alice/links")
    rel = link.relative_to(folder).as_posix()
    assert not plan.ok
    assert rel in checks(plan)["Links"].detail
    assert rel not in {f.path for f in plan.files}
    # never read: the key behind the link is not even reported as a secret
    assert "private key" not in checks(plan)["Secrets"].detail
    with pytest.raises(Exception, match="preflight"):
        [e async for e in service(hubx).upload(plan)]


async def test_a_chain_of_links_that_ends_outside_is_refused(hubx, folder: Path, tmp_path: Path) -> None:
    secret = _outside(tmp_path)
    (folder / "hop.txt").symlink_to(secret)
    (folder / "vocab.txt").symlink_to("hop.txt")  # inside the folder, but through a link that leaves
    plan = await service(hubx).preflight(folder, "alice/chain")
    assert "vocab.txt" in checks(plan)["Links"].detail and "hop.txt" in checks(plan)["Links"].detail


async def test_a_linked_folder_is_not_followed(hubx, folder: Path, tmp_path: Path) -> None:
    secret = _outside(tmp_path)
    (folder / "extras").symlink_to(secret.parent, target_is_directory=True)
    plan = await service(hubx).preflight(folder, "alice/dirlink")
    assert "extras/" in checks(plan)["Links"].detail
    assert not any(f.path.startswith("extras") for f in plan.files)


async def test_a_link_inside_the_folder_is_fine(hubx, folder: Path) -> None:
    (folder / "docs").mkdir()
    (folder / "docs" / "card.md").symlink_to("../README.md")
    plan = await service(hubx).preflight(folder, "alice/inside")
    assert "Links" not in checks(plan)
    assert "docs/card.md" in {f.path for f in plan.files}


# --- secrets by content -------------------------------------------------------------------------------------

SHAPES = {
    "hf token": TOKEN,
    "hf token then underscore": TOKEN + "_backup",
    "hf token then letters": TOKEN + "xyz",
    "hf token after underscore": "MY_" + TOKEN,
    "hf token glued to a word": "token" + TOKEN,
    "hf org token": "api_org_" + "k3Jd9" * 7,
    "github classic": "ghp_" + "A1b2C3d4" * 5,
    "github oauth": "gho_" + "Zz9" * 13,
    "github fine-grained": "github_pat_11ABCDEFG0" + "x_Y1" * 15,
    "aws key id": "AKIA" + "IOSFODNN7EXAMPLE",
    "aws temporary key id": "ASIA" + "Y34FZKBOKMUTVV7A",
    "aws secret in shell": "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "aws secret in ini": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "aws secret in json": '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
    "openai key": "sk-" + "T3BlbkFJ" * 6,
    "openai project key": "sk-proj-" + "a1B2_c3D4-" * 5,
    "anthropic-style key": "sk-ant-api03-" + "Q9w8E7r6" * 6,
    "rsa private key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
    "openssh private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----",
    "pkcs8 private key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
    "encrypted private key": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----",
    "ec private key": "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----",
    "slack bot token": "xoxb-17653672481-19874698323-" + "pdFZKVeTuE8sk7oO",
    "pgp private key": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOY\n-----END PGP PRIVATE KEY BLOCK-----",
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_secret_shape_is_found_with_its_line(shape: str) -> None:
    text = f"# notes\n\nsome text\n{SHAPES[shape]}\nmore text\n"
    found = scan_bytes(text.encode(), "notes.md")
    assert found, shape
    assert found[0].where == "line 4"
    secret_part = SHAPES[shape].split("=")[-1].strip('{}"" :')[8:]  # the bulk of the secret
    assert all(secret_part not in str(f) for f in found)  # masked


@pytest.mark.parametrize("text", [
    "hf_hub_download is a function", "use hf_transfer for speed", "see https://huggingface.co/docs",
    "the task-specific head", "AKIA is not a key", "BEGIN PUBLIC KEY", "-----BEGIN CERTIFICATE-----",
    "skip-connection", "ghp_short", "hugs xoxo-gossip-girl-fan", "sk-learn", "AIza short",
])
def test_ordinary_text_is_not_a_secret(text: str) -> None:
    assert scan_bytes(text.encode()) == []


@pytest.mark.parametrize("shape", ["hf token", "openssh private key", "aws secret in shell", "github classic"])
async def test_a_secret_blocks_the_preflight_wherever_it_is(hubx, folder: Path, shape: str) -> None:
    (folder / "notes.txt").write_text(f"line one\n{SHAPES[shape]}\n")
    plan = await service(hubx).preflight(folder, "alice/s")
    detail = checks(plan)["Secrets"].detail
    assert not plan.ok and "notes.txt line 2" in detail
    assert checks(plan)["Secrets"].files == ("notes.txt",)


@pytest.mark.parametrize("offset", [0, (1 << 20) - 10, (1 << 20) - 1, 6_000_000, (3 << 20) + 4090])
def test_a_token_anywhere_in_a_large_file_is_found(tmp_path: Path, offset: int) -> None:
    path = tmp_path / "tokenizer.json"
    body = bytearray(b'{"vocab": "' + b"ab cd\n" * (offset // 6 + 20) + b'"}\n')
    body[offset:offset + len(TOKEN) + 2] = b" " + TOKEN.encode() + b"x"  # glued to what follows
    path.write_bytes(bytes(body))
    found, digest = scan_file(LocalFile("tokenizer.json", path.stat().st_size, real=str(path)))
    assert [f.kind for f in found] == ["Hugging Face token"]
    lines_before = bytes(body[:offset + 1]).count(b"\n")
    assert found[0].where == f"line {lines_before + 1}"
    assert len(digest) == 64


async def test_the_users_own_token_is_found_whatever_its_shape(hubx, folder: Path) -> None:
    (folder / "generation_config.json").write_text('{"note": "%s"}' % hubx.write_token)  # not hf_ + 30 letters
    plan = await service(hubx).preflight(folder, "alice/own")
    assert "your Hugging Face token" in checks(plan)["Secrets"].detail
    assert hubx.write_token not in repr(plan) and hubx.write_token not in str(plan.checks)


async def test_safetensors_metadata_is_scanned(hubx, folder: Path) -> None:
    import mlx.core as mx

    weights = folder / "model.safetensors"
    mx.save_safetensors(str(weights), mx.load(str(weights)), metadata={"format": "mlx", "comment": "key " + TOKEN})
    plan = await service(hubx).preflight(folder, "alice/meta")
    assert "model.safetensors __metadata__ 'comment'" in checks(plan)["Secrets"].detail


# --- file names -------------------------------------------------------------------------------------------

SECRET_NAMES = [".env", ".ENV", ".Env.local", ".envrc", ".ENVRC", "prod.env", ".netrc", "_netrc", "_NETRC",
                "id_rsa", "ID_ED25519", "id_ecdsa_sk", "id_rsa.pub", "server.PEM", "tls.key", "cert.P12",
                "credentials", "credentials.json", "application_default_credentials.json", "my-service-account.json",
                ".git-credentials", ".npmrc", ".pypirc", ".pgpass"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_credential_names_are_recognised_in_any_case(name: str) -> None:
    assert secret_name(name)


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "tokenizer_config.json", "id_map.json",
                                  "special_tokens_map.json", "README.md", "keys.txt", "environment.md"])
def test_model_files_are_not_credential_names(name: str) -> None:
    assert not secret_name(name)


@pytest.mark.parametrize("rel", [".envrc", ".ENV", "_netrc", "sub/.env.production", ".aws/credentials",
                                 ".config/gcloud/application_default_credentials.json", ".ssh/id_ed25519",
                                 "keys/deploy.PEM"])
async def test_a_credential_file_is_refused_and_never_sent(hubx, folder: Path, rel: str) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
    plan = await service(hubx).preflight(folder, "alice/names")
    assert not plan.ok
    assert rel.split("/")[0] in checks(plan)["Unexpected files"].detail
    assert not any(f.path == rel or f.path.startswith(rel.split("/")[0] + "/") for f in plan.files)


async def test_excluding_a_file_lets_the_rest_go_and_the_file_never_leaves(hubx, folder: Path) -> None:
    (folder / "notes.txt").write_text(f"{TOKEN}\n")
    (folder / ".envrc").write_text("export X=1\n")
    svc = service(hubx)
    plan = await svc.preflight(folder, "alice/excl")
    assert not plan.ok
    plan = await svc.preflight(folder, "alice/excl", exclude=["notes.txt", ".envrc"])
    assert plan.ok, plan.errors
    assert "notes.txt" in checks(plan)["Excluded"].detail
    events = [e async for e in svc.upload(plan)]
    from huggingface_hub import HfApi

    files = HfApi(endpoint=hubx.url, token=hubx.write_token).list_repo_files("alice/excl")
    assert "notes.txt" not in files and ".envrc" not in files and "config.json" in files
    assert events[-1].verified_files == len(plan.files)


# --- terminal safety ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["evil\x1b[2J.txt", "bell\x07.md", "csi\x9b31m.json", "new\nline.txt"])
def test_file_names_are_printable_in_every_label(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / name).symlink_to("/etc/passwd")
    (folder / (".env" + name)).write_text("x")
    walk = walk_folder(folder)
    for label in walk.labels("link", "secret"):
        assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in label), repr(label)


def test_cli_file_list_is_printable(hubx, folder: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from mlxtui.cli import main

    (folder / "evil\x1b]0;owned\x07.txt").write_text("hello\n")
    monkeypatch.setenv("HF_TOKEN", hubx.write_token)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    main(["--endpoint", hubx.url, "upload", str(folder), "alice/term"])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "evil^[]0;owned^G.txt" in out


async def test_a_file_swapped_for_a_link_after_the_check_is_never_sent(hubx, folder: Path, tmp_path: Path) -> None:
    secret = _outside(tmp_path)
    notes = folder / "notes.txt"
    notes.write_text("harmless\n")
    svc = service(hubx)
    plan = await svc.preflight(folder, "alice/swap")
    assert plan.ok, plan.errors
    notes.unlink()
    notes.symlink_to(secret)
    with pytest.raises(Exception, match="changed since the check .* now fails: Links"):
        [e async for e in svc.upload(plan)]
    from huggingface_hub import HfApi

    assert not HfApi(endpoint=hubx.url, token=hubx.write_token).repo_exists("alice/swap")


@pytest.mark.parametrize("rel", [f"{TOKEN}.txt", f"notes/{'ghp_' + 'A1b2C3d4' * 5}/a.md"])
async def test_a_secret_in_a_file_name_is_found(hubx, folder: Path, rel: str) -> None:
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    (folder / rel).write_text("harmless\n")
    plan = await service(hubx).preflight(folder, "alice/named")
    assert not plan.ok and "its name" in checks(plan)["Secrets"].detail
    assert TOKEN not in checks(plan)["Secrets"].detail


async def test_a_secret_in_a_tensor_name_is_found(hubx, folder: Path) -> None:
    import mlx.core as mx

    weights = folder / "model.safetensors"
    tensors = mx.load(str(weights))
    tensors["note." + TOKEN] = mx.zeros((1,))
    mx.save_safetensors(str(weights), tensors, metadata={"format": "mlx"})
    plan = await service(hubx).preflight(folder, "alice/tname")
    assert "model.safetensors a tensor name: Hugging Face token" in checks(plan)["Secrets"].detail


# --- the stream, as a property -------------------------------------------------------------------------------

_SECRETS = st.sampled_from([TOKEN, "ghp_" + "A1b2C3d4" * 5, "-----BEGIN OPENSSH PRIVATE KEY-----",
                            "github_pat_11ABCDEFG0" + "x_Y1" * 15])


@settings(max_examples=150, deadline=None)
@given(before=st.binary(max_size=300), after=st.binary(max_size=300), secret=_SECRETS,
       chunk=st.integers(min_value=1, max_value=97))
def test_a_secret_is_found_whole_at_its_line_whatever_surrounds_it_and_wherever_chunks_end(
        before: bytes, after: bytes, secret: str, chunk: int) -> None:
    import mlxtui.services.upload_scan as scan

    data = before + secret.encode() + after
    old = scan._CHUNK, scan._OVERLAP
    scan._CHUNK, scan._OVERLAP = chunk, 128  # tiny chunks: every border position gets tried
    try:
        found = scan.scan_bytes(data, "f.txt")
    finally:
        scan._CHUNK, scan._OVERLAP = old
    at = len(before)
    line = data.count(b"\n", 0, at) + 1
    ours = [f for f in found if f.where == f"line {line}"]
    assert ours, (found, data)
    if secret.startswith(("hf_", "ghp_")):
        # whatever follows is not cut off: the masked length counts the whole run of token characters
        run = len(secret) + len(after) - len(after.lstrip(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
        assert any(f"({run} characters)" in f.masked for f in ours), (ours, run)


async def test_a_fifo_is_refused_without_being_opened(hubx, folder: Path) -> None:
    os.mkfifo(folder / "vocab.txt")  # opening it would block the preflight for ever
    plan = await service(hubx).preflight(folder, "alice/fifo")
    assert "vocab.txt (not a regular file)" in checks(plan)["Unexpected files"].detail


async def test_exclude_takes_a_relative_or_an_absolute_path(hubx, folder: Path) -> None:
    (folder / "a.txt").write_text(TOKEN)
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text(TOKEN)
    plan = await service(hubx).preflight(folder, "alice/ex", exclude=["a.txt", str(folder / "sub")])
    assert plan.ok, plan.errors
    assert {"a.txt", "sub/b.txt"}.isdisjoint(f.path for f in plan.files)
