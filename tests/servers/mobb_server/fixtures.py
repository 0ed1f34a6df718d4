"""pytest plugin (loaded by pytest.ini as ``-p mobb_server.fixtures``): the local Mobb server.

- ``mobb_server`` (session): one ``python -m mobb_server`` process per test session (per
  xdist worker), trusting the GitLab hub's test CA so HTTPS GitLab instances work.
- ``mobb`` (function): that server reset to empty, as a ``MobbServer``.
"""
from __future__ import annotations

import pytest

from mobb_server.client import start_mobb


@pytest.fixture(scope='session')
def mobb_server(gitlab_hub):
    server = start_mobb(ca_path=gitlab_hub.ca_path)
    yield server
    server.stop()


@pytest.fixture
def mobb(mobb_server):
    mobb_server.reset()
    return mobb_server
