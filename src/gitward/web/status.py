"""Health, as Bitbucket Server answers it."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["status"])


@router.get("/status")
async def status() -> dict[str, str]:
    return {"state": "RUNNING"}
