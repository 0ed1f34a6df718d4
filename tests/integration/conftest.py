"""Fixtures shared by the integration tests that need the collection as users get it."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


@dataclasses.dataclass(frozen=True)
class InstalledCollection:
    tarball: pathlib.Path
    collections_path: pathlib.Path  # holds ansible_collections/mobb/scm installed from the tarball


def _run(*command):
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed


@pytest.fixture(scope='session')
def installed_collection(tmp_path_factory):
    """Build the collection tarball and install it into a collections path of its own."""
    folder = tmp_path_factory.mktemp('built-collection')
    _run(os.path.join(BIN, 'ansible-galaxy'), 'collection', 'build', REPO_ROOT, '--output-path', str(folder))
    tarball = next(folder.glob('mobb-scm-*.tar.gz'))
    # --force: make's ANSIBLE_COLLECTIONS_PATH already holds mobb.scm (the checkout's link),
    # and ansible-galaxy would otherwise call it installed and install nothing.
    _run(os.path.join(BIN, 'ansible-galaxy'), 'collection', 'install', '--offline', '--no-deps', '--force',
         '-p', str(folder / 'collections'), str(tarball))
    return InstalledCollection(tarball, folder / 'collections')
