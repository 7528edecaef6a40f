"""The pipeline's unit threads: a job whose event loop closed while it ran (the application
shut down meanwhile) ends quietly, and the thread serves the next job."""

from __future__ import annotations

import asyncio
import threading

from gitward.web.pipeline import UnitThreads


def test_a_job_outliving_its_loop_ends_quietly_and_the_thread_goes_on():
    threads = UnitThreads(1)
    release = threading.Event()
    crashed: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: crashed.append(args.exc_value)  # type: ignore[assignment]
    try:
        loop = asyncio.new_event_loop()

        async def submit() -> None:
            job = asyncio.ensure_future(threads.run(release.wait))
            await asyncio.sleep(0.05)  # the job is running in the thread
            job.cancel()

        loop.run_until_complete(submit())
        loop.close()  # ... and the loop is gone before the job ends
        release.set()
        # The same thread, still serving (before, it died with the loop's RuntimeError, and
        # the server had one thread fewer for good).
        assert asyncio.run(asyncio.wait_for(threads.run(lambda: 42), 10)) == 42
        assert crashed == []
    finally:
        threading.excepthook = previous
        threads.close()
