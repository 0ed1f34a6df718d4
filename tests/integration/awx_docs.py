"""What docs/awx.md gives users to paste: its YAML blocks, parsed (the tests run them)."""
from __future__ import annotations

import os
import re

import jinja2
import yaml

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'docs', 'awx.md')


def raw_yaml_blocks():
    with open(DOC, encoding='utf-8') as handle:
        text = handle.read()
    return re.findall(r'```yaml\n(.*?)```', text, re.S)


def yaml_blocks():
    return [yaml.safe_load(block) for block in raw_yaml_blocks()]


def project_playbooks():
    """The project's playbooks, by the file name in their first line (``# rotate.yml``)."""
    return {block.split('\n', 1)[0][2:].strip(): block for block in raw_yaml_blocks()
            if block.startswith('# ') and 'import_playbook' in block}


def _builder_definitions():
    return [block for block in yaml_blocks() if isinstance(block, dict) and block.get('version') == 3]


def execution_environment():
    return next(block for block in _builder_definitions() if 'ansible-rulebook' not in block['images']['base_image']['name'])


def decision_environment():
    return next(block for block in _builder_definitions() if 'ansible-rulebook' in block['images']['base_image']['name'])


def credential_types():
    return [block for block in yaml_blocks() if isinstance(block, dict) and 'injectors' in block]


def injected_environment(inputs_by_type):
    """The environment AWX would give a job: each credential type's env injectors rendered
    with the inputs given for it (by type name), defaults filled in from the inputs schema."""
    environment = {}
    for credential_type in credential_types():
        fields = credential_type['inputs']['fields']
        values = {field['id']: field['default'] for field in fields if 'default' in field}
        values.update(inputs_by_type[credential_type['name']])
        missing = [name for name in credential_type['inputs'].get('required', []) if not values.get(name)]
        assert not missing, f'{credential_type["name"]}: required inputs missing: {missing}'
        for name, template in credential_type['injectors']['env'].items():
            environment[name] = jinja2.Template(template).render(**values)
    return environment
