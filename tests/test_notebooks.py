"""The evaluator's notebooks run on a small world, so they never rot; they are committed without outputs."""

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
ALLOWED_IMPORTS = {"matcher", "pandas", "matplotlib", "os", "tempfile"}


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_there_are_notebooks_named_step_initials_what():
    assert len(NOTEBOOKS) >= 3
    for p in NOTEBOOKS:
        assert re.fullmatch(r"\d+\.\d+-[a-z]{2,3}-[a-z0-9]+(-[a-z0-9]+)*\.ipynb", p.name), p.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs_and_imports_only_matcher_pandas_matplotlib(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in _code(nb):
        assert cell.outputs == [] and cell.execution_count is None, "strip the outputs before committing"
        python = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))
        for node in ast.walk(ast.parse(python)):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= ALLOWED_IMPORTS, roots
    assert "parameters" in _code(nb)[0].metadata.get("tags", []), "the first code cell holds the parameters"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, tiny_world_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MATCHER_WORLD", str(tiny_world_dir))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")      # a busy two-core machine: no thread oversubscription
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    # The kernel spec shipped inside the venv by ipykernel: runs this interpreter, no install step.
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in _code(nb) for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "every notebook shows at least one plot"
