"""The naive baseline of bench/serve.py: a FastAPI app that calls a `transformers.pipeline`
once per request (no batching across requests), as a first server is usually written.

Run: MODEL=runs/sst2/model uvicorn --app-dir bench naive_server:app --port 8001
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

classifier = pipeline(
    "text-classification", model=os.environ.get("MODEL", "runs/sst2/model"), top_k=None
)
app = FastAPI()


class Body(BaseModel):
    model: str = ""
    input: str | list[str]


@app.get("/ready")
def ready():
    return {"status": "ready"}


@app.post("/v1/classify")
def classify(body: Body):  # a sync route: FastAPI runs it in its thread pool
    texts = [body.input] if isinstance(body.input, str) else body.input
    out = []
    for i, scores in enumerate(classifier(texts)):
        best = max(scores, key=lambda s: s["score"])
        out.append(
            {
                "index": i,
                "label": best["label"],
                "score": best["score"],
                "scores": {s["label"]: s["score"] for s in scores},
            }
        )
    return {"object": "list", "data": out}
