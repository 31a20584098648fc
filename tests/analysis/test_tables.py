import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_model_table_is_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "model_table.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, "README model table is stale: run python benchmarks/model_table.py"
