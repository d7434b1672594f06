"""The model behind the service: what it is, loading at start, reloading, and refusing tampered artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import Api, make_api


def copy_models(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for p in src.iterdir():
        shutil.copy2(p, dst / p.name)
    return dst


def tamper(manifest_path):
    """Change one byte of the artifact a manifest names."""
    manifest = json.loads(manifest_path.read_text())
    artifact = manifest_path.parent / manifest["artifact"]
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    return artifact


def only_manifest(d):
    (m,) = sorted(d.glob("*.json"))
    return m


@pytest.fixture(scope="module")
def learned(trained_model_dir):
    return only_manifest(trained_model_dir)


def test_get_model_tells_version_training_date_and_metrics(api, prior_model_dir):
    manifest = json.loads(only_manifest(prior_model_dir).read_text())
    for role in ("volunteer", "recruiter", "evaluator", "admin"):
        resp = api.get("/api/v1/model", as_=role)
        assert resp.status_code == 200
    info = resp.get_json()
    assert info["model_version"] == manifest["version"]
    assert info["trained_at"] == manifest["created"]
    assert info["kind"] == "prior" and info["metrics"] == {}
    assert "skill_coverage" in info["features"]


def test_a_learned_model_serves_matches_with_its_version(tmp_path, trained_model_dir, learned):
    api = make_api(f"sqlite:///{tmp_path / 'l.db'}", tmp_path, trained_model_dir)
    version = json.loads(learned.read_text())["version"]
    assert "learned" in version
    info = api.get("/api/v1/model").get_json()
    assert info["model_version"] == version and info["metrics"]["holdout"]
    body = api.get("/api/v1/households/H-A/matches", as_="volunteer").get_json()
    assert body["model_version"] == version
    assert body["plan"] and all(0.0 <= m["score"] <= 1.0 for m in body["members"][0]["matches"])


def test_a_tampered_artifact_is_refused_at_start(tmp_path, trained_model_dir):
    models = copy_models(trained_model_dir, tmp_path / "models")
    tamper(only_manifest(models))
    api = make_api(f"sqlite:///{tmp_path / 't.db'}", tmp_path, models)
    ready = api.get("/readyz", as_=None)
    assert ready.status_code == 503
    assert "SHA-256" in ready.get_json()["error"]["message"]
    resp = api.get("/api/v1/workers/W-A1/matches", as_="volunteer")
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "model_unavailable"


def test_a_tampered_reload_is_refused_and_the_old_model_keeps_serving(tmp_path, prior_model_dir, trained_model_dir):
    models = copy_models(prior_model_dir, tmp_path / "models")
    bad = copy_models(trained_model_dir, tmp_path / "models")
    learned_manifest = [p for p in bad.glob("*.json") if "learned" in p.name][0]
    tamper(learned_manifest)
    api = make_api(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, models,
                   MODEL_PATH=str([p for p in models.glob("*.json") if "prior" in p.name][0]))
    before = api.get("/api/v1/model").get_json()["model_version"]
    resp = api.post("/api/v1/model/reload", as_="evaluator", json={"path": learned_manifest.name})
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "model_refused" and err["field"] == "path" and "SHA-256" in err["message"]
    assert f"still serving {before}" in err["message"]
    assert api.get("/api/v1/model").get_json()["model_version"] == before
    assert api.get("/api/v1/households/H-A/matches", as_="volunteer").get_json()["model_version"] == before
    assert api.get("/readyz", as_=None).status_code == 200


def test_reload_swaps_the_model_in_every_process(tmp_path, prior_model_dir, trained_model_dir, learned):
    models = copy_models(prior_model_dir, tmp_path / "models")
    prior_path = only_manifest(models)
    api = make_api(f"sqlite:///{tmp_path / 's.db'}", tmp_path, models, MODEL_PATH=str(prior_path))
    from matcher.api import create_app
    other = Api(create_app(dict(api.app.config)), api.tokens)   # another worker process
    copy_models(trained_model_dir, models)
    resp = api.post("/api/v1/model/reload", as_="admin", json={"path": learned.name})
    assert resp.status_code == 200
    new = resp.get_json()["model_version"]
    assert "learned" in new
    assert api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()["model_version"] == new
    assert other.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()["model_version"] == new


def test_reload_without_a_path_loads_the_production_model(tmp_path, prior_model_dir):
    models = copy_models(prior_model_dir, tmp_path / "models")
    api = make_api(f"sqlite:///{tmp_path / 'p.db'}", tmp_path, models)
    resp = api.post("/api/v1/model/reload", as_="evaluator", json={})
    assert resp.status_code == 200
    assert resp.get_json()["model_version"] == json.loads(only_manifest(models).read_text())["version"]


@pytest.mark.parametrize("path", ["/etc/passwd", "../../elsewhere.json", "missing.json"])
def test_reload_refuses_paths_outside_the_models_folder_or_missing(api, path):
    resp = api.post("/api/v1/model/reload", as_="admin", json={"path": path})
    assert resp.status_code == 422
    assert resp.get_json()["error"]["field"] == "path"
    assert api.get("/readyz", as_=None).status_code == 200


def test_a_prior_artifact_is_used_only_when_it_is_the_loaded_one(tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    api = make_api(f"sqlite:///{tmp_path / 'n.db'}", tmp_path, empty)
    assert api.get("/api/v1/households/H-A/matches", as_="volunteer").status_code == 503


def test_reload_with_no_body_at_all_loads_the_production_model(tmp_path, prior_model_dir):
    models = copy_models(prior_model_dir, tmp_path / "models")
    api = make_api(f"sqlite:///{tmp_path / 'p.db'}", tmp_path, models)
    resp = api.post("/api/v1/model/reload", as_="evaluator")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["model_version"] == json.loads(only_manifest(models).read_text())["version"]
    # a body that is there must still be JSON
    resp = api.post("/api/v1/model/reload", as_="evaluator", data=b"path=x", content_type="text/plain")
    assert resp.status_code == 415


def test_a_reload_request_can_neither_forge_a_log_line_nor_learn_a_server_path(api, caplog):
    import logging
    forged = "m\n2026-12-01 10:00:00,000 INFO matcher.api forged line\r"
    models_root = str(Path(api.app.config["MODELS_DIR"]).resolve())
    with caplog.at_level(logging.DEBUG):
        answers = [api.post("/api/v1/model/reload", as_="admin", json={"path": p})
                   for p in (forged, "/etc/passwd", "../../elsewhere.json", "missing.json")]
    for resp in answers:
        assert resp.status_code == 422
        assert models_root not in resp.get_data(as_text=True)
        assert str(Path(api.app.config["MODELS_DIR"])) not in resp.get_data(as_text=True)
    lines = [r.getMessage() for r in caplog.records]
    assert any("m\\x0a2026-12-01" in line for line in lines)        # it was logged, escaped
    assert not any("\n" in line or "\r" in line for line in lines if "2026-12-01 10:00" in line)
    assert not any(models_root in line for line in lines)
