"""Live tests: the collection against the GitLab and Mobb named in the environment.

They run only when selected with ``-m live`` (``make live``): GITLAB_URL and GITLAB_TOKEN are
also what glab and the modules read, so having them in a shell must never be enough to
create tokens on a real GitLab. Selected without the variables, the run stops at once and
names the missing ones.
"""
from __future__ import annotations

import dataclasses
import os

import pytest

REQUIRED_VARIABLES = ('GITLAB_URL', 'GITLAB_TOKEN', 'LIVE_GITLAB_PROJECT', 'MOBB_API_URL', 'MOBB_API_KEY')
HERE = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class LiveTarget:
    """Where the live tests run; the secrets stay out of reprs and tracebacks."""
    gitlab_url: str
    gitlab_token: str = dataclasses.field(repr=False)
    gitlab_ca_path: str | None
    project: str
    mobb_api_url: str
    mobb_api_key: str = dataclasses.field(repr=False)
    mobb_write: bool


_TARGET = pytest.StashKey[LiveTarget]()
_DESELECTED = pytest.StashKey[int]()


def _target_from_environment():
    missing = [name for name in REQUIRED_VARIABLES if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            f'live tests need {", ".join(missing)} in the environment; see "Testing against a real '
            'GitLab and Mobb" in README.md')
    mobb_write = os.environ.get('LIVE_MOBB_WRITE', '')
    if mobb_write not in ('', '0', '1'):
        raise pytest.UsageError(f'LIVE_MOBB_WRITE must be 1 (write to Mobb) or 0/unset (read only), not {mobb_write!r}')
    ca_path = os.environ.get('GITLAB_CA_PATH') or None
    if ca_path and not os.path.isfile(ca_path):
        raise pytest.UsageError(f'GITLAB_CA_PATH {ca_path!r} is not a file; give a PEM bundle of CA certificates')
    return LiveTarget(
        gitlab_url=os.environ['GITLAB_URL'], gitlab_token=os.environ['GITLAB_TOKEN'], gitlab_ca_path=ca_path,
        project=os.environ['LIVE_GITLAB_PROJECT'], mobb_api_url=os.environ['MOBB_API_URL'],
        mobb_api_key=os.environ['MOBB_API_KEY'], mobb_write=mobb_write == '1')


def _is_live(item):
    return os.path.dirname(str(item.path)) == HERE


def pytest_collection_modifyitems(config, items):
    live_items = [item for item in items if _is_live(item)]
    if not live_items:
        return
    if 'live' not in config.getoption('markexpr'):
        config.hook.pytest_deselected(items=live_items)
        items[:] = [item for item in items if not _is_live(item)]
        config.stash[_DESELECTED] = len(live_items)
        return
    config.stash[_TARGET] = _target_from_environment()


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(_DESELECTED, 0):
        terminalreporter.write_line(
            f'{config.stash[_DESELECTED]} live test(s) deselected: they run with `make live` (pytest -m live)')


@pytest.fixture(scope='session')
def live(pytestconfig):
    """The ``LiveTarget`` from the environment (checked at collection)."""
    return pytestconfig.stash[_TARGET]
