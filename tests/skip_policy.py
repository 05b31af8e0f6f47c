"""pytest plugin: a skip fails the run unless it is listed here.

Only an optional dependency that the test extras do not install may skip a test (the reason is printed by
``-rs``); today there is none, so every skip is a failure: a test that silently does not run looks like a pass.
Collection-time skips (``pytest.importorskip`` at module level) are caught the same way.
"""

from __future__ import annotations

import pytest

# Substrings of skip reasons that are allowed, each with why. Empty: the test extras install every oracle and the
# reference data ships inside the repository.
ALLOWED_SKIPS: tuple[str, ...] = ()


def _reason(longrepr) -> str:
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _fail_if_unexpected(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _reason(report.longrepr)
        if not any(a in reason for a in ALLOWED_SKIPS):
            report.outcome = "failed"
            report.longrepr = (
                f"unexpected skip: {reason}\n(only optional dependencies outside the test extras may "
                "skip; list them in tests/skip_policy.py ALLOWED_SKIPS with the reason)"
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_if_unexpected(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_if_unexpected(outcome.get_result())
