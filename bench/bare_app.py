"""The baseline: a bare FastAPI endpoint that parses the JSON and answers 202, storing nothing."""

import uuid
from typing import Any

from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/leads", status_code=202)
async def accept(lead: dict[str, Any]) -> dict[str, str]:
    return {"lead_id": str(uuid.uuid4()), "status": "accepted"}
