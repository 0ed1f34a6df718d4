"""The collection's rulebooks (extensions/eda/rulebooks/) as ansible-rulebook reads them: its schema, its
parser, and the one source and rule both share. gitlab_token_rotation.yml also runs in ansible-rulebook
itself in tests/integration/test_eda_rulebook.py; the controller's one needs an automation controller."""
from __future__ import annotations

import os

import pytest
import yaml
from ansible_rulebook.rules_parser import parse_rule_sets
from ansible_rulebook.validators import Validate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RULEBOOKS = os.path.join(ROOT, 'extensions', 'eda', 'rulebooks')
ACTIONS = {'gitlab_token_rotation.yml': 'run_playbook', 'gitlab_token_rotation_controller.yml': 'run_job_template'}


def load(name):
    with open(os.path.join(RULEBOOKS, name), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


def test_every_rulebook_is_listed_here():
    assert sorted(os.listdir(RULEBOOKS)) == sorted(ACTIONS)


@pytest.mark.parametrize('name', sorted(ACTIONS))
def test_the_rulebook_is_valid_and_throttles_one_server_to_one_run(name):
    rulebook = load(name)
    Validate.rulebook(rulebook)
    [ruleset] = parse_rule_sets(rulebook)
    # The limit of the run: localhost too, where mobb.scm.rotate checks the fleet and chooses the servers.
    assert ','.join(ruleset.hosts) == 'all,localhost'
    assert [source.source_name for source in ruleset.sources] == ['mobb.scm.gitlab_token_webhook']
    assert set(ruleset.sources[0].source_args) == {'host', 'port', 'secret', 'certfile', 'keyfile'}
    [rule] = rulebook[0]['rules']
    assert rule['condition'] == 'event.gitlab_token is defined'
    assert rule['throttle'] == {'once_within': '5 minutes', 'group_by_attributes': ['event.gitlab_token.gitlab_url']}
    assert list(rule['action']) == [ACTIONS[name]]


def test_both_rulebooks_pass_the_force_setting_on():
    local = load('gitlab_token_rotation.yml')[0]['rules'][0]['action']['run_playbook']
    controller = load('gitlab_token_rotation_controller.yml')[0]['rules'][0]['action']['run_job_template']
    assert local['name'] == 'mobb.scm.rotate'
    forced = "{{ mobb_scm_event_force | default(false) }}"
    assert local['extra_vars']['mobb_scm_event_force'] == controller['job_args']['extra_vars']['mobb_scm_event_force'] \
        == forced
