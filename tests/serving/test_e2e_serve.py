"""`tunelab serve` on the real packaged chat model and the trained SST-2 classifier."""

from __future__ import annotations

import httpx
import pytest
from serving_helpers import REPO, running_server

pytestmark = pytest.mark.e2e


def test_real_models_answer_over_http(tmp_path):
    import openai

    from tunelab import api

    sst2 = REPO / "runs" / "sst2"
    if not (sst2 / "model").is_dir():
        pytest.skip("runs/sst2 has not been trained here")
    with running_server([f"sst2={sst2}", "smollm2-135m-instruct"], tmp_path / "log") as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0)
        reply = client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            max_tokens=24,
            temperature=0,
        )
        assert "Paris" in reply.choices[0].message.content
        texts = ["a gripping, beautifully shot film", "a dull and lifeless mess"]
        got = httpx.post(f"{url}/v1/classify", json={"model": "sst2", "input": texts}).json()
        assert [d["label"] for d in got["data"]] == [p["label"] for p in api.predict(sst2, texts)]
        assert [d["label"] for d in got["data"]] == ["positive", "negative"]
