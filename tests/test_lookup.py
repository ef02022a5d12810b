"""Which cached activation file serves a layer when several made alike hold it.

``study.store(layer)`` (and every probe) opens the file :func:`find_cached_layer` names.  Once a
one-layer file (``extract --layer 2``) and a whole-model file (``extract --layers all``) both
exist, the whole-model one must serve, whatever their keys (file names) sort like: the
notebook's "compare layers" cell iterates ``store.layers``.
"""

from __future__ import annotations

import os

import pytest
from test_extract import request

from w2sprobe.cache import ActivationStore, extract, find_cached_layer, plan_extraction
from w2sprobe.cache.lookup import cached_layers


def _rename(path, stem: str):
    target = path.with_name(stem + ".h5")
    path.rename(target)
    return target


@pytest.mark.parametrize("one_layer_first", [True, False])
def test_the_file_with_the_most_layers_serves_whatever_the_names(
    tiny_models, tmp_path, one_layer_first
):
    model = tiny_models["gpt2"]
    one = extract(request(model, layers=[2]), tmp_path).path
    every = extract(request(model, layers="all"), tmp_path).path
    # keys are hashes: make either file the first by name
    one = _rename(one, "0000000000000000" if one_layer_first else "ffffffffffffffff")
    every = _rename(every, "ffffffffffffffff" if one_layer_first else "0000000000000000")
    plan = plan_extraction(request(model, layers=[2]), tmp_path)
    assert find_cached_layer(plan, 2) == every
    with ActivationStore.open(find_cached_layer(plan, 2)) as store:
        assert len(store.layers) > 1 and 2 in store.layers  # every layer of the tiny GPT-2
    assert set(cached_layers(plan).values()) == {every}


def test_between_files_with_as_many_layers_the_newest_serves(tiny_models, tmp_path):
    model = tiny_models["gpt2"]
    first = extract(request(model, layers="1,2"), tmp_path).path
    second = extract(request(model, layers="2,3"), tmp_path).path
    plan = plan_extraction(request(model, layers=[2]), tmp_path)
    os.utime(first, (1_000_000, 1_000_000))
    os.utime(second, (2_000_000, 2_000_000))
    assert find_cached_layer(plan, 2) == second
    os.utime(first, (3_000_000, 3_000_000))
    assert find_cached_layer(plan, 2) == first
    # a layer only one file has comes from that file
    assert cached_layers(plan)[3] == second and cached_layers(plan)[1] == first
