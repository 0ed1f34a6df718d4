"""pytest plugin: a local GitLab hub per test session (per xdist worker) and a fresh instance per test.

Loaded through ``-p gitlab_server.fixtures`` in ``pytest.ini``.
"""
from __future__ import annotations

import pytest

from gitlab_server.client import start_hub


@pytest.fixture(scope='session')
def gitlab_hub():
    """The hub process of this session (one per xdist worker)."""
    hub = start_hub()
    yield hub
    hub.stop()


@pytest.fixture
def gitlab(gitlab_hub):
    """A fresh plain-HTTP GitLab instance, removed after the test."""
    instance = gitlab_hub.new_instance()
    yield instance
    instance.close()
    gitlab_hub.remove_instance(instance)


@pytest.fixture
def gitlab_tls(gitlab_hub):
    """A fresh HTTPS GitLab instance (certificate signed by ``gitlab_tls.ca_path``), removed after the test."""
    instance = gitlab_hub.new_instance(tls=True)
    yield instance
    instance.close()
    gitlab_hub.remove_instance(instance)
