"""`.ci/run` runs the README's two set-up commands as written, read from the README itself."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands():
    done = subprocess.run(
        [str(ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True, check=True
    )
    commands = done.stdout.splitlines()
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set-up: two commands.*?```bash\n(.*?)```", readme, re.S)
    assert block is not None
    written = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert commands == written and len(commands) == 2
    install, test = commands
    # the CPU build of torch before the package (a plain torch requirement pulls CUDA)
    assert install.index("pip install torch==") < install.index("pip install -e")
    assert "python -m pytest" in test and "MFM_DATA_DIR=" in test
