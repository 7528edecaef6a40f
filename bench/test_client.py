"""The in-process test client against Starlette's TestClient, side by side on one empty
route (docs/testing.md): milliseconds per request, and their ratio.

    PYTHONPATH=. .venv/bin/python bench/test_client.py [--requests 500]
"""

from __future__ import annotations

import argparse
import time
import warnings

from fastapi import FastAPI
from tests.asgi_client import AppClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    n = parser.parse_args().requests
    app = FastAPI()

    @app.get("/x")
    async def x() -> dict[str, int]:
        return {"a": 1}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    def per_request(client: object) -> float:
        get = client.get  # type: ignore[attr-defined]
        get("/x")
        started = time.perf_counter()
        for _ in range(n):
            get("/x")
        return (time.perf_counter() - started) / n * 1000

    with TestClient(app) as starlette, AppClient(app) as ours:
        old, new = per_request(starlette), per_request(ours)
    print(f"TestClient {old:.2f} ms, AppClient {new:.2f} ms, ratio {old / new:.1f}x")


if __name__ == "__main__":
    main()
