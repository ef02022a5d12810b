"""Without a route to the hub, hub ids go to the local hub cache at once instead of retrying.

The endpoint is pointed at a closed port on this machine (connection refused at once), which is
what an air-gapped node looks like to huggingface_hub and datasets; their retry back-off sleeps
are recorded (and skipped), so "at once" means "no retry was attempted", not a wall-clock bound.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest

from w2sprobe import hubnet
from w2sprobe.errors import UsageError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the with block ends


@dataclass
class NoRoute:
    constants: Any  # huggingface_hub.constants, patched
    retries: list[float]  # every back-off sleep the hub libraries asked for


@pytest.fixture
def no_route(monkeypatch):
    """The hub endpoint refuses connections; retry sleeps are recorded instead of slept."""
    import datasets.config
    from huggingface_hub import constants

    hubnet.hub_reachable.cache_clear()
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # conftest sets them for all tests
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", endpoint)  # datasets keeps its own copy
    retries: list[float] = []
    monkeypatch.setattr(time, "sleep", retries.append)
    yield NoRoute(constants, retries)
    hubnet.hub_reachable.cache_clear()


def test_reachability_is_a_tcp_connect_to_the_endpoint():
    hubnet.hub_reachable.cache_clear()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert hubnet.hub_reachable(f"http://127.0.0.1:{server.getsockname()[1]}") is True
    assert hubnet.hub_reachable(f"http://127.0.0.1:{_closed_port()}") is False
    hubnet.hub_reachable.cache_clear()


def test_offline_mode_holds_only_inside_the_block(no_route):
    import datasets.config

    with hubnet.offline_unless_reachable() as offline:
        assert offline is True
        assert no_route.constants.HF_HUB_OFFLINE is True
        assert datasets.config.HF_HUB_OFFLINE is True
    assert no_route.constants.HF_HUB_OFFLINE is False
    assert datasets.config.HF_HUB_OFFLINE is False


def test_an_unknown_model_id_fails_at_once_naming_the_unreachable_hub(
    no_route, tmp_path, monkeypatch
):
    from w2sprobe.models.loading import resolve_model

    monkeypatch.setattr(no_route.constants, "HF_HUB_CACHE", str(tmp_path))  # an empty hub cache
    with pytest.raises(UsageError) as info:
        resolve_model("someone/not-cached")
    assert "someone/not-cached" in str(info.value)
    assert hubnet.UNREACHABLE in str(info.value)
    assert no_route.retries == []


def test_a_model_in_the_local_hub_cache_resolves_to_its_commit_without_the_hub(
    no_route, tmp_path, monkeypatch
):
    from w2sprobe.models.loading import resolve_model

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someone--cached-model"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(no_route.constants, "HF_HUB_CACHE", str(tmp_path))

    ref = resolve_model("someone/cached-model")
    assert (ref.location, ref.revision) == ("someone/cached-model", commit)
    assert no_route.retries == []


def test_an_unknown_hub_dataset_fails_at_once_with_one_line(no_route, tmp_path, monkeypatch):
    import datasets.config

    from w2sprobe.data.hub import HubSource, load_with_fallback

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    with pytest.raises(UsageError) as info:
        load_with_fallback(HubSource("someone/not-cached", None, ("train",)), "train", "mine")
    message = str(info.value)
    assert message.startswith("dataset mine: hub repo someone/not-cached")
    assert hubnet.UNREACHABLE in message
    assert "\n" not in message
    assert no_route.retries == []
