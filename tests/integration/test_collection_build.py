"""The collection as users get it: build the tarball, install it, read every module's docs."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(REPO_ROOT, 'plugins', 'modules'))
                 if name.endswith('.py') and not name.startswith('_'))


def _run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=300, **kwargs)


@pytest.fixture(scope='module')
def tarball_names(installed_collection):
    with tarfile.open(installed_collection.tarball) as archive:
        return archive.getnames()


def test_the_planned_modules_exist():
    for module in ('gitlab_personal_access_token', 'gitlab_project_access_token',
                   'gitlab_group_access_token', 'gitlab_access_token_info',
                   'mobb_integration', 'mobb_connection_info'):
        assert module in MODULES


def test_tarball_ships_plugins_and_leaves_development_files_out(tarball_names):
    names = tarball_names
    assert 'MANIFEST.json' in names
    assert 'meta/runtime.yml' in names
    for module in MODULES:
        assert f'plugins/modules/{module}.py' in names
    leaked = [n for n in names if n.startswith(('tests/', '.venv', '.cache', '.ci', 'demo/'))
              or '__pycache__' in n or n in ('Makefile', 'pytest.ini')]
    assert not leaked


@pytest.mark.parametrize('module', MODULES)
def test_ansible_doc_renders_from_the_installed_tarball(installed_collection, module):
    collections = installed_collection.collections_path
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR='1')
    completed = _run([os.path.join(BIN, 'ansible-doc'), '-t', 'module', f'mobb.scm.{module}'], env=env)
    assert completed.stdout.startswith(f'> MODULE mobb.scm.{module} ({collections}')
    assert 'EXAMPLES:' in completed.stdout
    assert 'RETURN VALUES:' in completed.stdout
