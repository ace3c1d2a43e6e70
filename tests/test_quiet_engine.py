"""Library chatter (bitsandbytes' kernels warning, FutureWarnings) goes to HOME's engine log, not to the
terminal of whoever runs an engine command; real errors still reach stderr."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from engine.quiet import LIBRARY_LOG
from tests.conftest import REPO, cli_env

NOISE = ("kernels-community", "FutureWarning", "DeprecationWarning", "UserWarning", "WARNING")


def test_logged_and_warned_noise_goes_to_the_log_and_errors_to_stderr(home: Path) -> None:
    script = textwrap.dedent("""
        import logging, sys, warnings
        from pathlib import Path
        from engine.quiet import quiet_libraries
        quiet_libraries(Path(sys.argv[1]))
        logging.getLogger("bitsandbytes.backends.cpu.ops").warning("Failed to load CPU gemm_4bit_forward")
        warnings.warn("this argument is deprecated", FutureWarning)
        logging.getLogger("somelib").error("the GPU fell off the bus")
    """)
    log = home / LIBRARY_LOG
    proc = subprocess.run([sys.executable, "-c", script, str(log)], env=cli_env(home), capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "somelib: the GPU fell off the bus"
    text = log.read_text()
    assert "gemm_4bit_forward" in text and "FutureWarning" in text and "deprecated" in text


def test_an_unwritable_log_drops_the_noise_quietly(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "logs").write_text("a file where the folder should be")
    script = ("import logging, sys; from pathlib import Path; from engine.quiet import quiet_libraries; "
              "quiet_libraries(Path(sys.argv[1])); logging.getLogger('x').warning('noise')")
    proc = subprocess.run([sys.executable, "-c", script, str(home / LIBRARY_LOG)], env=cli_env(home),
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0 and proc.stderr == ""


def test_an_engine_command_that_imports_bitsandbytes_prints_no_library_noise(home: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "engine", "doctor"], env=cli_env(home, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if any(word in line for word in NOISE)], proc.stderr

