"""Property-based run over /openapi.json: no 5xx, and every response matches the documented schema.

Bounded: a few examples per operation, so the whole run stays well under a minute. The
operations are driven directly through hypothesis (schemathesis' pytest plugin does not run
under this pytest version), against one app on a fresh database.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance


@pytest.mark.parametrize("role,max_examples", [("admin", 12), ("volunteer", 4)])
def test_every_operation_conforms_to_its_document(api, role, max_examples):
    """As an admin (who may do everything) and as a volunteer (403s and out-of-scope 404s)."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", api.app)
    # Uncompressed: the WSGI client hands schemathesis the body as sent (compression: tests/test_pages.py).
    headers = api.headers(role, {"Accept-Encoding": "identity"})
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1

        @given(case=op.as_strategy())
        @settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            # Valid-looking bodies can still break rules across fields that JSON Schema does not
            # express (min_age <= max_age, a town inside its county): a 409 or 422 there is the
            # contract, so "positive data is accepted" is not checked; every other check is.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
