"""Cost model: catalogues, overrides and a hand-priced bill of materials."""

from __future__ import annotations

import pytest

from rfabric.cost import available_catalogues, evaluate, load_catalogue
from rfabric.errors import ConfigError
from rfabric.results import BillOfMaterials, BomLine


def test_catalogues_ship_with_sources() -> None:
    assert {"mixnet-2025", "market-2025"} <= set(available_catalogues())
    for name in available_catalogues():
        cat = load_catalogue(name)
        assert cat.date
        assert cat.value("ocs_port_usd") > 0
        for key in cat.items:
            assert key in cat.sources, f"{name}: {key} has no source"


def test_anchor_values() -> None:
    mix = load_catalogue("mixnet-2025")
    assert mix.value("transceiver_usd", 400e9) == 659
    assert mix.value("switch_port_usd", 400e9) == 1090
    assert mix.value("nic_port_usd", 800e9) == 2248
    assert load_catalogue("market-2025").value("transceiver_usd", 400e9) == 879


def test_overrides() -> None:
    cat = load_catalogue("mixnet-2025", {"ocs_port_usd": 300, "transceiver_usd": {400: 700}, "switch_port_usd": 1000})
    assert cat.value("ocs_port_usd") == 300
    assert cat.value("transceiver_usd", 400e9) == 700
    assert cat.value("transceiver_usd", 100e9) == 99
    assert cat.value("switch_port_usd", 100e9) == 1000
    assert cat.overridden == ("ocs_port_usd", "transceiver_usd", "switch_port_usd")


@pytest.mark.parametrize(("name", "over", "key"), [
    ("nope", {}, "cost.catalogue"),
    ("mixnet-2025", {"ocs_prt_usd": 1}, "cost.prices.ocs_prt_usd"),
    ("mixnet-2025", {"ocs_port_usd": -5}, "cost.prices.ocs_port_usd"),
])
def test_catalogue_errors(name: str, over: dict, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_catalogue(name, over)
    assert e.value.key == key


def test_missing_rate_names_item() -> None:
    with pytest.raises(ConfigError) as e:
        load_catalogue("mixnet-2025").value("transceiver_usd", 300e9)
    assert e.value.key == "cost.prices.transceiver_usd"


def test_hand_priced_bill() -> None:
    # 2 ToRs (radix 8, 400 G) + 1 spine (radix 8) + 8 NIC ports + 4 optical uplinks (8 transceivers)
    # + 1 OCS with 4 ports + 4 fibres of 500 m + 8 GPUs.
    bom = BillOfMaterials(topology="hand", num_gpus=8, lines=(
        BomLine(part="switch", tier="tor", rate_bps=400e9, radix=8, count=2),
        BomLine(part="switch", tier="core", rate_bps=400e9, radix=8, count=1),
        BomLine(part="switch_port", tier="tor", rate_bps=400e9, count=12),
        BomLine(part="nic_port", tier="host", rate_bps=400e9, count=8),
        BomLine(part="transceiver", tier="tor", rate_bps=400e9, count=8),
        BomLine(part="ocs_port", tier="ocs.core", count=4),
        BomLine(part="fibre", tier="core", count=4, length_m=500.0),
    ))
    c = evaluate(bom, load_catalogue("mixnet-2025"))
    expected = 3 * 8 * 1090 + 8 * 1499 + 8 * 659 + 4 * 520 + 4 * 500 * 0.3
    assert c.capex_network_usd == pytest.approx(expected)
    assert c.capex_cluster_usd == pytest.approx(expected + 8 * 30000)
    assert c.power_network_w == pytest.approx(3 * 8 * 39 + 8 * 19 + 8 * 10 + 4 * 0.39)
    assert c.by_part()["switch"] == pytest.approx(3 * 8 * 1090)
