"""The execution environment AWX needs: the collection's meta/execution-environment.yml,
read by ansible-builder from the built collection, and docs/awx.md's EE definition turned
into a build context by `ansible-builder create` (no container engine needed); the same for
the decision environment of its rulebook activation."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import tarfile

import yaml

from awx_docs import decision_environment, execution_environment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def run(*command, cwd=None):
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def requirement_lines(name):
    with open(os.path.join(ROOT, name), encoding='utf-8') as handle:
        return [line.split('#')[0].strip() for line in handle if line.split('#')[0].strip()]


def test_ansible_builder_finds_the_collections_python_and_system_needs(installed_collection):
    collections = installed_collection.collections_path
    installed = collections / 'ansible_collections' / 'mobb' / 'scm'
    assert yaml.safe_load((installed / 'meta' / 'execution-environment.yml').read_text())['dependencies'] == {
        'python': 'requirements.txt', 'system': 'bindep.txt'}
    found = yaml.safe_load(run(os.path.join(BIN, 'ansible-builder'), 'introspect', '--sanitize', str(collections)))
    assert found['python'] == [f'{line}  # from collection mobb.scm' for line in requirement_lines('requirements.txt')]
    assert [line.split('  #')[0] for line in found['python']] == ['python-gitlab>=6.0.0', 'requests>=2.28.0']
    assert found['system'] == [f'{line}  # from collection mobb.scm' for line in requirement_lines('bindep.txt')]


def build_context(documented, tarball, tmp_path):
    """`ansible-builder create` on a definition of docs/awx.md with the collection from the tarball
    (Galaxy is not reachable here); the build context's folder."""
    definition = copy.deepcopy(documented)
    assert definition['dependencies']['galaxy']['collections'][0]['name'] == 'mobb.scm'
    definition['dependencies']['galaxy']['collections'] = [{'name': str(tarball), 'type': 'file'}]
    path = tmp_path / 'definition.yml'
    path.write_text(yaml.safe_dump(definition))
    context = tmp_path / 'context'
    run(os.path.join(BIN, 'ansible-builder'), 'create', '-f', str(path), '-c', str(context),
        '--output-filename', 'Containerfile')
    return context


def test_the_documented_definition_makes_a_build_context(installed_collection, tmp_path):
    tarball = installed_collection.tarball
    context = build_context(execution_environment(), tarball, tmp_path)
    containerfile = (context / 'Containerfile').read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/ansible/awx-ee:latest"' in containerfile
    assert 'ansible-galaxy collection install' in containerfile
    assert 'introspect.py introspect' in containerfile and 'install-from-bindep' in containerfile
    assert yaml.safe_load((context / '_build' / 'requirements.yml').read_text()) == {
        'collections': [{'name': str(tarball), 'type': 'file'}]}
    assert "ansible-core>=2.19,<2.20" in containerfile


def test_the_documented_decision_environment_makes_a_build_context_with_the_collection(installed_collection, tmp_path):
    context = build_context(decision_environment(), installed_collection.tarball, tmp_path)
    containerfile = (context / 'Containerfile').read_text()
    # The base image brings ansible-rulebook and its Java runtime; the collection brings its needs.
    assert 'ARG EE_BASE_IMAGE="quay.io/ansible/ansible-rulebook:latest"' in containerfile
    assert 'ansible-galaxy collection install' in containerfile and 'install-from-bindep' in containerfile
    # The built collection carries the event source and both rulebooks.
    with tarfile.open(installed_collection.tarball) as tarball:
        names = tarball.getnames()
    assert 'extensions/eda/plugins/event_source/gitlab_token_webhook.py' in names
    assert {'extensions/eda/rulebooks/gitlab_token_rotation.yml',
            'extensions/eda/rulebooks/gitlab_token_rotation_controller.yml'} <= set(names)
