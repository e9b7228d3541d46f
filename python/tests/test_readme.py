"""The README's Python example runs as written."""

import re
from pathlib import Path

import tether

README = Path(__file__).resolve().parents[2] / "README.md"


def python_section() -> str:
    text = README.read_text(encoding="utf-8")
    start, end = text.index("<!-- python:start -->"), text.index("<!-- python:end -->")
    return text[start:end]


def test_readme_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", python_section(), re.S)
    assert len(blocks) == 1
    example = blocks[0]
    assert len(example.strip().splitlines()) == 5
    namespace: dict[str, object] = {}
    exec(compile(example, str(README), "exec"), namespace)
    engine = namespace["engine"]
    assert isinstance(engine, tether.Engine)
    assert engine.stats()["conflicts"] == 1  # the example reached its except clause


def test_readme_shows_the_install_command() -> None:
    assert "pip install ./python" in python_section()
