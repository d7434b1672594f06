"""The service as it runs: service.py, `matcher serve` under gunicorn with several worker processes, /docs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import api_world

ROOT = Path(__file__).resolve().parents[1]


def test_service_py_is_the_factory_called_once():
    lines = [line for line in (ROOT / "service.py").read_text().splitlines() if line.strip()]
    assert lines == ["from matcher.api import create_app", "app = create_app()"]


def test_docs_are_served_from_local_files(api):
    page = api.client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    for asset in ("/docs/static/swagger-ui.css", "/docs/static/swagger-ui-bundle.js", "/docs/init.js"):
        assert asset in html
        resp = api.client.get(asset)
        assert resp.status_code == 200 and len(resp.data) > 100
    assert "/openapi.json" in api.client.get("/docs/init.js").get_data(as_text=True)


def test_openapi_document_describes_every_endpoint_with_its_errors(api):
    doc = api.client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path, method in [("/api/v1/jobs", "post"), ("/api/v1/jobs", "get"), ("/api/v1/jobs/{job_id}", "patch"),
                         ("/api/v1/jobs/{job_id}/close", "post"), ("/api/v1/jobs/{job_id}/candidates", "get"),
                         ("/api/v1/households", "post"), ("/api/v1/workers", "post"),
                         ("/api/v1/import/workers", "post"), ("/api/v1/workers/{worker_id}/matches", "get"),
                         ("/api/v1/households/{household_id}/matches", "get"), ("/api/v1/referrals", "post"),
                         ("/api/v1/referrals/{referral_id}", "patch"), ("/api/v1/model", "get"),
                         ("/api/v1/model/reload", "post"), ("/api/v1/stats", "get"), ("/api/v1/allocations", "post"),
                         ("/api/v1/allocations/{allocation_id}", "get"), ("/healthz", "get"), ("/readyz", "get")]:
        assert method in paths[path], (path, method)
    post_job = paths["/api/v1/jobs"]["post"]
    assert {"201", "401", "403", "413", "415", "422", "429"} <= set(post_job["responses"])
    assert post_job["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    job_in = doc["components"]["schemas"]["JobIn"]
    assert "filled" not in job_in["properties"] and "status" not in job_in["properties"]
    assert job_in["additionalProperties"] is False
    assert paths["/healthz"]["get"]["security"] == []
    k = [p for p in paths["/api/v1/workers/{worker_id}/matches"]["get"]["parameters"] if p["name"] == "k"][0]
    assert k["schema"]["minimum"] == 1 and k["schema"]["default"] == 10


def test_serve_help_names_host_port_and_workers():
    out = subprocess.run([sys.executable, "-m", "matcher", "serve", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--host" in out and "--port" in out and "--workers" in out and "127.0.0.1" in out and "8000" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base, method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_gunicorn_workers_each_see_new_jobs_and_reloads(tmp_path, prior_model_dir, trained_model_dir):
    """Two worker processes, each with its own engine made after the fork."""
    import shutil

    from matcher.store import create_token, import_world, init_db, make_engine
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    init_db(db)
    engine = make_engine(db)
    import_world(engine, api_world())
    admin = create_token(engine, "admin", "admin")
    volunteer = create_token(engine, "volunteer", "vol", county="371102")
    engine.dispose()
    models = tmp_path / "models"
    shutil.copytree(prior_model_dir, models)
    (learned,) = sorted(trained_model_dir.glob("*.json"))
    port = _free_port()
    env = dict(os.environ, MATCHER_DATABASE_URL=db, MATCHER_MODELS_DIR=str(models),
               MATCHER_INSTANCE=str(tmp_path / "instance"), MATCHER_LOG_LEVEL="WARNING")
    env.pop("MATCHER_MODEL", None)
    server = subprocess.Popen([sys.executable, "-m", "matcher", "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if _call(base, "GET", "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        else:
            pytest.fail("the service did not become ready")
        for _ in range(20):   # warm both workers
            assert _call(base, "GET", "/api/v1/workers/W-A1/matches", volunteer)[0] == 200
        status, job = _call(base, "POST", "/api/v1/jobs", admin, {
            "job_id": "J-LIVE", "employer": "新厂", "title": "质检", "kind": "enterprise", "lat": 35.505,
            "lon": 119.267, "slots": 2, "monthly_wage": 6000})
        assert status == 201
        for _ in range(20):
            status, body = _call(base, "GET", "/api/v1/workers/W-A1/matches", volunteer)
            assert "J-LIVE" in [m["job_id"] for m in body["matches"]]
        shutil.copy2(learned, models / learned.name)
        shutil.copy2(learned.with_suffix(".joblib"), models / learned.with_suffix(".joblib").name)
        status, info = _call(base, "POST", "/api/v1/model/reload", admin, {"path": learned.name})
        assert status == 200, info
        versions = {_call(base, "GET", "/api/v1/workers/W-A1/matches", volunteer)[1]["model_version"]
                    for _ in range(20)}
        assert versions == {info["model_version"]}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_the_openapi_document_is_valid_openapi_3_0(api):
    """As openapi-spec-validator reads it (a generated client starts from the same document)."""
    from openapi_spec_validator import OpenAPIV30SpecValidator
    doc = api.client.get("/openapi.json").get_json()
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in OpenAPIV30SpecValidator(doc).iter_errors()]
    assert errors == []


def test_docs_carry_the_pages_security_headers_and_options_answers_no_content(api):
    for path in ("/docs", "/docs/init.js", "/openapi.json"):
        resp = api.client.get(path)
        assert resp.status_code == 200
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
    resp = api.client.options("/openapi.json")
    assert resp.status_code == 204 and resp.data == b"" and "Content-Type" not in resp.headers
    assert "GET" in resp.headers["Allow"]
    resp = api.client.options("/api/v1/jobs", headers=api.headers("volunteer"))
    assert resp.status_code == 204 and {"GET", "POST"} <= set(resp.headers["Allow"].replace(" ", "").split(","))
