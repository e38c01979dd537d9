"""The REST and WebSocket routes, one `APIRouter` per resource; `deployments.api` joins them.

Route functions carry no docstrings on purpose: FastAPI would publish them as the
operations' descriptions, and the OpenAPI schema is part of the contract.
"""
