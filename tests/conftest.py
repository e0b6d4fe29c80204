"""Shared pytest setup: the ``ray`` marker and the suite's embedded Ray.

Tests marked ``ray`` start Ray, build an RLlib algorithm or import ``ray``
(:mod:`tests.helpers.ray_tests`); the rest is the core. Whether a session can select a ``ray``
test is decided from ``-m`` before collection:

* it can (``pytest``, ``pytest -m slow``, ...): the environment for an embedded Ray is set at
  once, before any test module imports Ray (:func:`tests.helpers.ray_tests.prepare_ray_env`), and
  ``python -m launch`` subprocesses inherit it;
* it cannot (``pytest -m "not ray and not slow"``, the core): nothing of Ray or ``tune_configs`` is
  imported here, modules whose tests are all ``ray`` (module-level ``pytestmark``) are not even
  imported, and the session fails if Ray gets imported all the same: the test (or the collection)
  that imported it is reported as failed, naming it.

``ray_session``: one embedded Ray per test session, started lazily by the first test that asks
for it and shut down at the end; every test using it must be marked ``ray`` (checked at
collection). Like every command without ``--address`` it is a new local instance
(``ray.init(address="local")``): a Ray cluster already running on the machine (``RAY_ADDRESS``,
or a ``ray start --head`` of the user) is never joined. It binds 127.0.0.1 only, has 2 CPUs, no
dashboard, a 200 MB object store, and its workers import this checkout (``PYTHONPATH``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ray_tests import RAY, declares_ray, prepare_ray_env, ray_selectable

RAY_OBJECT_STORE_BYTES = 200 * 1024 * 1024

_RAY_FREE = pytest.StashKey[bool]()  # the session cannot select a ray test
_IMPORTED_BY = pytest.StashKey[list[str]]()  # where Ray was first imported, in a ray-free session


def pytest_configure(config: pytest.Config) -> None:
    ray_free = not ray_selectable(config.option.markexpr)
    config.stash[_RAY_FREE] = ray_free
    config.stash[_IMPORTED_BY] = []
    if not ray_free:
        prepare_ray_env()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In a ray-free session, do not import the modules whose tests are all ``ray``."""
    if (
        config.stash[_RAY_FREE]
        and collection_path.name.startswith("test_")
        and collection_path.suffix == ".py"
        and declares_ray(collection_path)
    ):
        return True
    return None


def _ray_newly_imported(config: pytest.Config) -> bool:
    return config.stash[_RAY_FREE] and RAY in sys.modules and not config.stash[_IMPORTED_BY]


def _ray_message(where: str) -> str:
    return (
        f"{where} imported Ray in a session that excludes ray tests (-m not ray): the core must "
        "never import Ray. Mark the test `ray` (pytest.mark.ray), or keep Ray out of what it "
        "imports."
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    if _ray_newly_imported(session.config):
        session.config.stash[_IMPORTED_BY].append("a plugin or conftest, before collection")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """In a ray-free session, collecting the module that imports Ray is an error."""
    report = yield
    if _ray_newly_imported(collector.config):
        where = f"collecting {collector.nodeid or 'the session'}"
        collector.config.stash[_IMPORTED_BY].append(where)
        if not report.failed:
            report.outcome = "failed"
            report.longrepr = _ray_message(where)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In a ray-free session, the test phase after which Ray appears in ``sys.modules`` fails."""
    report = yield
    if _ray_newly_imported(item.config):
        item.config.stash[_IMPORTED_BY].append(f"{item.nodeid} ({call.when})")
        message = _ray_message(f"{item.nodeid} ({call.when})")
        if report.failed:
            report.sections.append(("ray imported", message))
        else:
            report.outcome = "failed"
            report.longrepr = message
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if "ray_session" in getattr(item, "fixturenames", ())
        and item.get_closest_marker(RAY) is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests using the ray_session fixture must be marked ray:\n  " + "\n  ".join(unmarked)
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if config.stash[_RAY_FREE] and RAY in sys.modules:
        if not config.stash[_IMPORTED_BY]:
            config.stash[_IMPORTED_BY].append("something outside the tests (a plugin, a fixture)")
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if config.stash[_RAY_FREE] and RAY in sys.modules:
        terminalreporter.write_sep("=", "Ray was imported", red=True)
        terminalreporter.write_line(_ray_message(config.stash[_IMPORTED_BY][0]))


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """An embedded 2-CPU Ray for the whole session (started on first use)."""
    from tune_configs.ops import runtime

    prepare_ray_env()  # set already if the session can select ray tests; idempotent
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(
            **runtime.embedded_init_kwargs(2, RAY_OBJECT_STORE_BYTES),
            log_to_driver=False,
            configure_logging=True,
            logging_level=logging.ERROR,
        )
        started = True
    yield ray
    if started and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (:mod:`tests.helpers.browser`); skipped with the
    reason where Chromium cannot be installed."""
    from tests.helpers.browser import launched

    with launched() as b:
        yield b
