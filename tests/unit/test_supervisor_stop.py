"""A worker told to stop while it is still starting stops cleanly, even when the stop lands
inside code that wraps the exception it raises (uvicorn's logging set-up does)."""

import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time, logging
    logging.basicConfig(level=logging.INFO)
    from gitward import serving

    def serve():
        try:
            os.kill(os.getppid(), signal.SIGTERM)  # the supervisor stops every worker
            time.sleep(20)
        except serving._Stop as stop:
            raise ValueError("Unable to configure logger") from stop
        return 0

    sys.exit(serving.Supervisor(1, serve).run())
    """
)


def test_a_stop_wrapped_in_another_exception_is_still_a_clean_stop():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env={"PYTHONPATH": str(SRC)},
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "failed" not in done.stderr, done.stderr
    assert "stopping 1 workers" in done.stderr


def test_a_worker_that_fails_on_its_own_is_still_reported():
    script = SCRIPT.replace("os.kill(os.getppid(), signal.SIGTERM)", "pass").replace(
        "time.sleep(20)", "raise RuntimeError('broken at start')"
    ).replace("sys.exit(serving.Supervisor(1, serve).run())",
              "serving.MAX_QUICK_EXITS = 1; sys.exit(serving.Supervisor(1, serve).run())")
    done = subprocess.run(
        [sys.executable, "-c", script], env={"PYTHONPATH": str(SRC)},
        capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 1
    assert "RuntimeError: broken at start" in done.stderr
