"""`make demo` end to end: demo/run.py starts its own servers, runs mobb.scm.rotate three
times and mobb.scm.check by their names, checks each step (it exits non-zero when one does
not behave as it says) and proves that no secret the servers issued reached its output or
the files it left."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_demo(script, output_dir):
    """The demo script's output, once it exited 0."""
    environment = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    completed = subprocess.run([sys.executable, os.path.join(ROOT, 'demo', script), '--output-dir', str(output_dir)],
                               env=environment, capture_output=True, text=True, timeout=600, check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    return output


def test_the_demo_tells_its_story_and_leaves_no_secret(tmp_path):
    output_dir = tmp_path / 'demo'
    output = run_demo('run.py', output_dir)
    steps = ['1. First run', '2. The daily run', '3. 24 days later', '4. The run that rotates', '5. The check',
             '6. A GitLab server added in Mobb']
    positions = [output.index(step) for step in steps]
    assert positions == sorted(positions)
    assert 'GitLab tokens kept for Mobb - 3 token(s) on 3 host(s): created: 3' in output
    assert 'GitLab tokens kept for Mobb - 3 token(s) on 3 host(s): none: 3' in output
    assert 'GitLab tokens kept for Mobb - 3 token(s) on 3 host(s): rotated: 3' in output
    assert 'GitLab token check - 3 token(s) on 3 host(s): ok: 3' in output
    # gitlab-onprem's token belongs to a group service account, created on the first run by a
    # group Owner's token, left alone by the daily run and rotated after the clock moved.
    sa_rows = [line.split() for line in output.splitlines()
               if line.strip().startswith('gitlab-onprem.example  service_account:payments/mobb/mobb-broker')]
    assert [row[2] for row in sa_rows] == ['created', 'none', 'rotated', 'ok']
    assert "created by alice's token, an Owner's, not an administrator's" in output
    # The run with the inventory plugin's inventory: the server added in Mobb gets its token.
    assert 'GitLab tokens kept for Mobb - 4 token(s) on 4 host(s): ' in output
    assert ', failed: 0' in output.split('Mobb connection checks during the run: ')[1].split('\n')[0]
    assert 'tokens and keys the servers issued appears in the output' in output
    assert sorted(os.listdir(output_dir)) == ['1-rotate.log', '2-rotate.log', '3-rotate.log', '4-check.log',
                                              '5-inventory.log', '6-rotate.log', 'reports']
    assert sorted(os.listdir(output_dir / 'reports')) == ['gitlab-token-report.json', 'gitlab-token-report.md']
    assert len(output.splitlines()) < 150, 'the demo should stay a few screens long'


def test_the_events_demo_rotates_on_gitlabs_webhook_and_leaves_no_secret(tmp_path):
    output_dir = tmp_path / 'demo-events'
    output = run_demo('events.py', output_dir)
    steps = ['1. The scheduled run', '2. ansible-rulebook listens', '3. A forged event', '4. 23 days later']
    positions = [output.index(step) for step in steps]
    assert positions == sorted(positions)
    assert 'POST with X-Gitlab-Token: guessed -> 401' in output
    assert 'GitLab -> rulebook: Resource Access Token Hook, token 2 (mobb-broker)' in output
    assert 'GitLab tokens kept for Mobb - 1 token(s) on 1 host(s): rotated: 1' in output
    assert 'tokens, keys and the hook secret appears in any output' in output
    assert sorted(os.listdir(output_dir)) == ['1-rotate.log', 'events.yml', 'rulebook.log']
