"""training/specs.py: what the web process knows of each network (torch-free) agrees with the networks."""

import subprocess
import sys

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
