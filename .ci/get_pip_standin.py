"""Offline stand-in for ansible-test's downloaded get-pip bootstrap script.

ansible-test runs the cached ``get_pip_<version>.py`` with pip's arguments (for example
``pip==24.2 --no-setuptools --no-wheel``) to put pip into each sanity virtual
environment. These machines cannot reach the host it downloads from, but they reach
PyPI, so: bootstrap pip from the interpreter's bundled wheel, then let that pip install
the requested versions from the package index.
"""
import subprocess
import sys

ARGS = [arg for arg in sys.argv[1:] if arg not in ('--no-setuptools', '--no-wheel')]
subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=True, stdout=subprocess.DEVNULL)
subprocess.run([sys.executable, '-m', 'pip', 'install', '--disable-pip-version-check', *ARGS], check=True)
