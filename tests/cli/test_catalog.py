"""``labs-env catalog``: every collection, scenario and tool of the catalog; bad input exits 2."""

from __future__ import annotations

import json

import pytest

from labs_env.cli import main
from labs_env.connect import make_local_client


def test_catalog_lists_scenarios_and_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog"]) == 0
    text = capsys.readouterr().out
    with make_local_client() as client:
        catalog = client.catalog()
    for collection in catalog.collections:
        assert collection.slug in text
        for scenario in collection.scenarios:
            assert f"- {scenario.slug}" in text
            for tool in scenario.tools:
                assert f"tool {tool.id} " in text
                for option in tool.options or ():
                    assert option in text
    assert "[decision]" in text and "[artifact]" in text


def test_catalog_json_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--json", "--collection", "it-helpdesk"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["slug"] for c in data["collections"]] == ["it-helpdesk"]
    scenario = data["collections"][0]["scenarios"][0]
    assert {"slug", "name", "max_turns", "tools"} <= set(scenario)
    assert "request_id" not in data


def test_catalog_unknown_collection_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--collection", "no-such"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such" in err[0] and "insurance-claims" in err[0]


def test_catalog_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["catalog", "--help"])
    assert exit_info.value.code == 0
    assert "labs-env catalog --json" in capsys.readouterr().out
