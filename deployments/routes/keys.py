"""`/api/v1/keys`: the admin makes, lists and revokes API keys (deployments/auth.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, status

from deployments.auth import AdminDep
from deployments.deps import ServicesDep
from storage.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic

router = APIRouter(prefix="/keys", tags=["keys"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Make an API key (admin)",
    response_model=ApiKeyCreated,
)
async def create_key(body: ApiKeyCreate, _: AdminDep, services: ServicesDep) -> ApiKeyCreated:
    """The key is in this answer only: it is stored hashed."""
    row, key = await asyncio.to_thread(services.keys.create, body, datetime.now(UTC))
    public = ApiKeyPublic.model_validate(row, from_attributes=True)
    return ApiKeyCreated(**public.model_dump(), key=key)


@router.get("", summary="List the API keys (admin)", response_model=list[ApiKeyPublic])
async def list_keys(_: AdminDep, services: ServicesDep) -> list[ApiKeyPublic]:
    rows = await asyncio.to_thread(services.keys.list)
    return [ApiKeyPublic.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/{key_id}", summary="Revoke an API key (admin)", response_model=ApiKeyPublic)
async def revoke_key(key_id: uuid.UUID, _: AdminDep, services: ServicesDep) -> ApiKeyPublic:
    """Refused from now on, by every replica: keys are looked up on every request."""
    row = await asyncio.to_thread(services.keys.revoke, key_id, datetime.now(UTC))
    if row is None:
        raise HTTPException(status_code=404, detail=f"API key {key_id} not found")
    return ApiKeyPublic.model_validate(row, from_attributes=True)
