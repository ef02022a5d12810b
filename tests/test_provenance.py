"""Provenance: every run manifest records where it was made, the host name only hashed."""

from __future__ import annotations

import hashlib
import json
import socket
from importlib import metadata

from w2sprobe.provenance import PACKAGES, environment, host_hash
from w2sprobe.runs import write_manifest


def test_the_host_is_hashed_and_versions_are_the_installed_ones():
    assert host_hash("lab-gpu-7") == hashlib.sha256(b"lab-gpu-7").hexdigest()[:12]
    env = environment()
    assert env["host"] == host_hash(socket.gethostname())
    assert set(env["versions"]) == set(PACKAGES)
    assert env["versions"]["torch"] == metadata.version("torch")
    assert env["device"] in ("cpu", "cuda") and env["cpu"]


def test_every_manifest_records_its_environment_never_the_host_name(tmp_path):
    write_manifest(tmp_path / "run", {"key": "k", "stage": "weak"})
    text = (tmp_path / "run" / "manifest.json").read_text()
    assert json.loads(text)["environment"]["host"] == host_hash()
    assert f'"{socket.gethostname()}"' not in text  # no JSON string holds the name
