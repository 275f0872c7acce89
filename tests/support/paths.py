"""Where things are: the repository, the test data, the bundled workflow and grid."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SUPPORT = ROOT / "tests" / "support"
WORKFLOW_FILE = ROOT / "workflows" / "farmland_violation.yaml"
GRID_FILE = ROOT / "config" / "grid" / "dadukou.yaml"
GENGBAO = str(Path(sys.executable).parent / "gengbao")  # the console script of this venv
