"""The README's own-script examples: plain RLlib scripts with a remote env runner, run as shown.

The script blocks (``# my_rllib.py``: the single-cell env through the ``"envs:MetaLore-v0"`` id;
``# my_pool_rllib.py``: the per-cell pool env at city scale, 19 agents sharing one policy) are
taken from the README as they stand and run in a fresh interpreter: its own ``ray.init()`` on
loopback (no address to join), one remote env runner, one training iteration. About 20 s each.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import launch_env

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"```python\n(# (my_\w+\.py)\n.*?)```", re.DOTALL)


def readme_scripts() -> dict[str, str]:
    """The README's script blocks by file name (``my_rllib.py``, ``my_sb3.py``)."""
    text = (ROOT / "README.md").read_text()
    return {m.group(2): m.group(1) for m in _BLOCK.finditer(text)}


def test_readme_shows_the_scripts_with_the_id_form_that_works_everywhere() -> None:
    scripts = readme_scripts()
    assert set(scripts) == {"my_rllib.py", "my_sb3.py", "my_pool_rllib.py"}
    for name, code in scripts.items():
        if name != "my_pool_rllib.py":  # the multi-agent env is a class, not a Gymnasium id
            assert '"envs:MetaLore-v0"' in code
        compile(code, "<readme>", "exec")


@pytest.mark.ray
@pytest.mark.parametrize("name", ["my_rllib.py", "my_pool_rllib.py"])
def test_readme_rllib_script_trains_one_iteration_with_a_remote_env_runner(
    tmp_path: Path, name: str
) -> None:
    """``my_pool_rllib.py``: the per-cell pool env at city scale (19 agents) from a plain RLlib
    script, sampled by a remote env runner."""
    code = readme_scripts()[name]
    assert "num_env_runners=1" in code
    script = tmp_path / name
    script.write_text(code)
    env = launch_env()  # this checkout importable (as after `pip install -e .`)
    for key in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        env.pop(key, None)  # its own local Ray, never the session's
    env.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled",
               RAY_USAGE_STATS_ENABLED="0")  # fmt: skip  # loopback only
    r = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("episode return")]
    assert float(line.split()[-1]) > 0.0  # episodes finished in the remote runner
