"""training/specs.py: what the web process knows of each network (torch-free) agrees with the networks."""

import subprocess
import sys

import pytest

from annotations.kinds import AVAILABLE, ItemKind
from training.networks import NETWORKS
from training.specs import IMAGETTE_NETWORK, SPECS, network_for, network_names, network_spec


def test_every_network_has_its_spec_and_every_spec_its_network():
    assert set(SPECS) == set(NETWORKS)
    for name, spec in SPECS.items():
        assert spec.name == name and spec.item_kind in ItemKind.values
        assert NETWORKS[name].spec is spec  # each network declares itself by its spec


def test_each_available_kind_is_learnt_by_one_network():
    assert IMAGETTE_NETWORK == network_for(ItemKind.IMAGETTES) == "classifier"
    for kind in AVAILABLE:
        assert network_for(kind) in network_names()
    assert network_spec("classifier").primary_metric.name == "top1"
    assert network_spec("classifier").file_options == {"weights_path": "CRYOLABEL_CLASSIFIER_WEIGHTS"}


def test_the_specs_load_without_torch():
    code = "import sys; import training.specs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_kinds_registry_names_real_tables_and_every_part_of_the_available_kinds():
    from django.apps import apps

    from annotations import kinds

    for kind in AVAILABLE:
        entry = kinds.kind_entry(kind)
        for label in (entry.model, *entry.labels):
            assert apps.get_model(label)._meta.db_table
        assert set(entry.parts) == set(kinds.PARTS)  # filled by training and inference at start-up
    scenes = kinds.kind_entry(ItemKind.SCENES)  # learned by sic: snapshots, predictions and review are in
    assert {"snapshot_create", "snapshot_samples", "predictions", "review_unit"} <= set(scenes.parts)
    tracks = kinds.kind_entry(ItemKind.TRACKS)  # their tables are there; a part not filled in says so
    assert {"snapshot_create", "snapshot_unchanged", "snapshot_samples"} <= set(tracks.parts)  # learned by leads
    assert network_for(ItemKind.TRACKS) == "leads" and network_spec("leads").primary_metric.name == "f1"
    for label in (tracks.model, *tracks.labels):
        assert apps.get_model(label)._meta.db_table
    for part in sorted(set(kinds.PARTS) - set(tracks.parts)):
        with pytest.raises(kinds.KindNotAvailable, match=f"tracks have no {part.replace('_', ' ')}"):
            kinds.part(ItemKind.TRACKS, part)
