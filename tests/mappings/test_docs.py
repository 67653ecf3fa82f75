"""The examples of docs/mappings.md load, and its copy of the defaults is the real one."""

import json
import re
from pathlib import Path

import pytest
import yaml

from worker.mappings import DEFAULT_MAPPINGS, build_mappings

DOC = (Path(__file__).parents[2] / "docs" / "mappings.md").read_text()
ALL_BLOCKS = [
    (language, yaml.safe_load(body) if language == "yaml" else json.loads(body))
    for language, body in re.findall(r"```(yaml|json)\n(.*?)```", DOC, re.DOTALL)
]
#: Mappings files; the other blocks are files of test cases for `intercom-relay mappings test`.
BLOCKS = [(language, document) for language, document in ALL_BLOCKS if "tests" not in document]
TEST_BLOCKS = [document for _, document in ALL_BLOCKS if "tests" in document]


def test_the_doc_has_its_examples():
    assert len(BLOCKS) == 7


@pytest.mark.parametrize("language, document", BLOCKS)
def test_every_example_loads(language, document):
    assert build_mappings(document)


def test_the_documented_defaults_are_the_defaults():
    documented = next(document for _, document in BLOCKS if [m["name"] for m in document["mappings"]] == [m.name for m in DEFAULT_MAPPINGS])
    assert build_mappings(documented) == DEFAULT_MAPPINGS


def test_the_documented_test_cases_hold(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    assert len(TEST_BLOCKS) == 1
    path = tmp_path / "tests.json"
    path.write_text(json.dumps(TEST_BLOCKS[0]))
    result = CliRunner().invoke(main, ["mappings", "test", str(path)], env={"MAPPINGS_FILE": None})
    assert result.exit_code == 0, result.output
