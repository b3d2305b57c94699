"""Every hook is documented where it is declared and in docs/plugins.md, so neither can drift.

docs/plugins.md has one ``### hook_name(arg, ...)`` heading per hook under "## Hook reference";
each section shows the typed signature exactly as hookspecs.py declares it and an example
``@hookimpl`` implementation.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest

from whispermedia import hookspecs

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
SPECS = {name: f for name, f in vars(hookspecs).items() if hasattr(f, f"{hookspecs.PROJECT_NAME}_spec")}
HEADING = re.compile(r"^### `?(\w+)\(([^)]*)\)`?\s*$", re.M)


def typed_signature(name: str) -> str:
    """``name(arg: Type, ...) -> Return``, from the (string) annotations in hookspecs.py."""
    sig = inspect.signature(SPECS[name])
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def doc_sections() -> dict:
    """hook name -> (argument names in the heading, section text) from the hook reference."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("\n## Hook reference")
    end = text.find("\n## ", start + 1)
    reference = text[start:end if end != -1 else None]
    headings = list(HEADING.finditer(reference))
    sections = {}
    for i, m in enumerate(headings):
        body_end = headings[i + 1].start() if i + 1 < len(headings) else len(reference)
        args = tuple(a.strip() for a in m[2].split(",") if a.strip())
        sections[m[1]] = (args, reference[m.end():body_end])
    return sections


def test_specs_are_what_pluggy_sees():
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    assert set(SPECS) == {name for name in vars(pm.hook) if not name.startswith("_")}
    assert SPECS


@pytest.mark.parametrize("name", sorted(SPECS))
def test_docstring_documents_every_parameter(name):
    spec = SPECS[name]
    doc = inspect.getdoc(spec) or ""
    sig = inspect.signature(spec)
    for param in sig.parameters.values():
        assert f":param {param.name}:" in doc, f"{name}: no :param {param.name}: in the docstring"
        assert param.annotation is not inspect.Parameter.empty, f"{name}: {param.name} has no type"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
    assert ":returns:" in doc, f"{name}: no :returns: in the docstring"
    assert ".. versionadded::" in doc, f"{name}: no versionadded"
    documented = set(re.findall(r":param (\w+):", doc))
    assert documented == set(sig.parameters), f"{name}: docstring documents {documented}"
    if getattr(spec, f"{hookspecs.PROJECT_NAME}_spec").get("firstresult"):
        assert "Stops at first non-None result" in doc, f"{name} is firstresult but its docstring does not say so"


def test_docs_reference_exactly_the_hooks():
    assert set(doc_sections()) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented_in_docs(name):
    args, body = doc_sections()[name]
    assert args == tuple(inspect.signature(SPECS[name]).parameters), f"{name}: heading arguments differ from the spec"
    assert typed_signature(name) in body, f"docs/plugins.md should show `{typed_signature(name)}`"
    assert re.search(rf"```python\n(?:.*\n)*?@hookimpl.*\ndef {name}\(", body), f"{name}: no example hookimpl"
    if getattr(SPECS[name], f"{hookspecs.PROJECT_NAME}_spec").get("firstresult"):
        assert "first non-None" in body
