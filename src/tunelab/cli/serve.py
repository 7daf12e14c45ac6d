"""`tunelab serve MODEL [MODEL ...]`: argument parsing; the server is in serving/."""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """examples:
  tunelab serve runs/sst2                                  # /v1/classify on 127.0.0.1:8000
  tunelab serve smollm2-135m-instruct --port 8080          # OpenAI-compatible chat
  tunelab serve chat=runs/chat-sft sst2=runs/sst2 --api-key $KEY
  tunelab serve base=smollm2-135m-instruct a=runs/a/adapter b=runs/b/adapter   # adapters share the base
  tunelab serve de-en=runs/translation                     # seq2seq: /v1/completions, batched
  TUNELAB_API_KEYS=k1,k2 tunelab serve runs/sst2 --host 0.0.0.0
  tunelab serve runs/sst2 --db postgresql://user:pw@db/tunelab --log-text none  # a team's log
  tunelab serve runs/sst2 --no-log                         # no prediction log
  tunelab serve champion@sst2 --db postgresql://user:pw@db/tunelab   # follows the registry alias
  tunelab serve sst2@3 clf=challenger@sst2                 # a pinned version; another alias
  tunelab serve champion@sst2 --shadow challenger@sst2     # the challenger answers unseen
  tunelab shadow sst2                                      # ... agreement, estimated difference

then, e.g.:
  curl -s localhost:8000/v1/classify -H 'content-type: application/json' \\
       -d '{"model": "sst2", "input": ["a gripping film", "dull"]}'
  python -c "import openai; c = openai.OpenAI(base_url='http://localhost:8000/v1', api_key='-');
  print(c.chat.completions.create(model='smollm2-135m-instruct',
        messages=[{'role': 'user', 'content': 'Hi'}]).choices[0].message.content)"
MODEL is NAME=PATH or a bare reference (alias, model/run/export folder; named after its
folder), or a model registry reference in the --db database (champion@NAME, NAME@VERSION;
named NAME): an alias is followed, a promotion or rollback is swapped in without a restart.
Every served input is logged to the database (--db, default sqlite:///tunelab.db here) for
`tunelab monitor`. Docs: docs/serving.md, docs/registry.md, docs/monitoring.md."""


def add_parser(sub) -> None:
    s = sub.add_parser(
        "serve",
        help="serve models over HTTP (OpenAI-compatible, classify, entities)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="NAME=PATH, a model reference, or a registry reference (champion@NAME, NAME@3)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument(
        "--api-key",
        action="append",
        default=[],
        help="require Authorization: Bearer KEY on /v1/* (repeatable; also TUNELAB_API_KEYS=k1,k2)",
    )
    s.add_argument("--max-batch-size", type=int, default=32, help="rows per forward pass (32)")
    s.add_argument(
        "--max-wait-ms", type=float, default=5.0, help="how long a request waits for company (5)"
    )
    s.add_argument("--max-body-kb", type=int, default=1024, help="request body limit, KB (1024)")
    s.add_argument(
        "--max-tokens-limit",
        type=int,
        default=2048,
        help="largest max_tokens a request may ask (2048)",
    )
    s.add_argument("--max-inputs", type=int, default=256, help="texts per classify request (256)")
    s.add_argument(
        "--max-queue", type=int, default=256, help="waiting requests per model before 429"
    )
    s.add_argument("--timeout-s", type=float, default=120.0, help="per-request time limit (120)")
    s.add_argument(
        "--workers",
        type=int,
        help="classify/entities batches run at once (default: on a CPU, the cores torch's "
        "threads leave idle, e.g. 2 with OMP_NUM_THREADS=1 on 2 cores; 1 on a GPU)",
    )
    s.add_argument(
        "--engine",
        choices=("hf", "vllm"),
        default="hf",
        help="hf (default) or vllm (GPU, causal LMs)",
    )
    s.add_argument(
        "--hold-file",
        metavar="PATH",
        help="for tests and operators (off by default): while PATH exists the models do no work; "
        "requests wait, then time out (504) or find the queue full (429); delete PATH to go on",
    )
    s.add_argument(
        "--db",
        metavar="URL",
        help="the prediction log's and model registry's database (default: $TUNELAB_DB, else "
        "sqlite:///tunelab.db in the working directory; postgresql://... for a team)",
    )
    s.add_argument("--no-log", action="store_true", help="do not log predictions")
    s.add_argument(
        "--monitor-every-s",
        type=float,
        default=60.0,
        metavar="S",
        help="recompute /metrics' drift and estimate gauges from the log every S seconds "
        "(default 60; 0: off)",
    )
    s.add_argument(
        "--reload-every-s",
        type=float,
        default=5.0,
        metavar="S",
        help="read a served registry alias (champion@NAME) every S seconds and swap in the "
        "version it moved to, without a restart (default 5; 0: off)",
    )
    s.add_argument(
        "--shadow",
        action="append",
        default=[],
        metavar="MODEL",
        help="also run MODEL on every input a served model answers, unseen: challenger@NAME "
        "shadows NAME; NAME=PATH shadows NAME with a folder (repeatable, one per served "
        "model; classify, entities and answer models). Its answers are logged beside the "
        "log; `tunelab shadow NAME` reports the agreement and the estimated difference",
    )
    s.add_argument(
        "--log-text",
        choices=("none", "scrubbed", "raw"),
        default="scrubbed",
        help="what the log keeps of each input's text: none (its hash only), scrubbed "
        "(default: PII replaced as by `tunelab data prepare`), raw",
    )
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def _check_args(args) -> None:
    from tunelab.errors import ConfigError

    for flag in ("max_batch_size", "max_body_kb", "max_tokens_limit", "max_inputs", "max_queue"):
        if getattr(args, flag) < 1:
            raise ConfigError(
                f"--{flag.replace('_', '-')}", "must be >= 1", getattr(args, flag), has_value=True
            )
    for flag in ("max_wait_ms", "timeout_s"):
        if getattr(args, flag) < 0 or (flag == "timeout_s" and args.timeout_s == 0):
            raise ConfigError(
                f"--{flag.replace('_', '-')}", "must be > 0", getattr(args, flag), has_value=True
            )
    if args.reload_every_s < 0:
        raise ConfigError("--reload-every-s", "must be >= 0", args.reload_every_s, has_value=True)
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", "must be >= 1", args.workers, has_value=True)
    if not 0 < args.port < 65536:
        raise ConfigError("--port", "must be 1..65535", args.port, has_value=True)


def _serve_vllm(args, keys: list[str]) -> int:
    """Hand a causal LM to vLLM's own OpenAI-compatible server (GPU only)."""
    import importlib.util
    import os

    from tunelab.errors import TunelabError

    if importlib.util.find_spec("vllm") is None:
        raise TunelabError(
            "--engine vllm: vllm is not installed (pip install vllm; needs a CUDA GPU)"
        )
    import torch

    if not torch.cuda.is_available():
        raise TunelabError("--engine vllm: no CUDA GPU here; use --engine hf")
    if len(args.models) != 1:
        raise TunelabError("--engine vllm serves one model; give one MODEL")
    if args.shadow:
        raise TunelabError(
            "--engine vllm: no --shadow (vLLM serves causal LMs; shadows run "
            "beside classify, entities and answer models)"
        )
    from tunelab.methods.loading import resolve_model_dir
    from tunelab.models.sources import resolve_model
    from tunelab.serving.registry import check_safetensors, parse_spec

    name, ref = parse_spec(args.models[0])
    check_safetensors(ref)
    path = resolve_model(str(resolve_model_dir(ref)) if os.path.isdir(ref) else ref).path
    argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", path]
    argv += ["--served-model-name", name, "--host", args.host, "--port", str(args.port)]
    argv += ["--max-num-seqs", str(args.max_batch_size)]
    for key in keys[:1]:  # vllm takes one key
        argv += ["--api-key", key]
    os.execv(sys.executable, argv)  # replaces this process
    return 0


def main(args) -> int:
    import logging

    from tunelab.errors import TunelabError
    from tunelab.serving.auth import api_keys

    _check_args(args)
    keys = api_keys(args.api_key)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if not keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} without an API key (--api-key)", file=sys.stderr)
    if args.engine == "vllm":
        return _serve_vllm(args, keys)
    import uvicorn

    from tunelab.serving import Registry
    from tunelab.serving.app import Settings, create_app
    from tunelab.store.db import database_url, open_db, shown_url

    # registry references (champion@NAME) resolve in the same database the log goes to
    if args.shadow and args.no_log:
        raise TunelabError(
            "--shadow writes the shadow's answers beside the prediction log; drop --no-log"
        )
    registry = Registry(args.models, db=database_url(args.db), shadows=args.shadow)
    # fast: bad paths, registry references that do not resolve and pickle weights fail
    # (one line, exit 2) before any weights load
    registry.check()
    db = None
    if not args.no_log:
        db = database_url(args.db)
        open_db(db).dispose()  # StoreError (one line, exit 2) before any weights load
        print(f"logging predictions to {shown_url(db)} (--no-log: off)", file=sys.stderr)
    print(f"loading {', '.join(n for n, _ in registry.specs)} ...", file=sys.stderr)
    registry.load()
    settings = Settings(
        api_keys=keys,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_body_kb=args.max_body_kb,
        max_tokens_limit=args.max_tokens_limit,
        max_inputs=args.max_inputs,
        max_queue=args.max_queue,
        timeout_s=args.timeout_s,
        workers=args.workers,
        hold_file=args.hold_file,
        db=db,
        log_text=args.log_text,
        monitor_every_s=args.monitor_every_s,
        reload_every_s=args.reload_every_s,
    )
    for m in registry.models.values():
        source = f" ({m.reference}: version {m.version})" if m.reference else ""
        print(f"  {m.name:20s} {m.task:22s} {m.path}{source}", file=sys.stderr)
        shadow = registry.shadows.get(m.name)
        if shadow is not None:
            source = f" ({shadow.reference}: version {shadow.version})" if shadow.reference else ""
            print(f"  {'  shadow':20s} {shadow.task:22s} {shadow.path}{source}", file=sys.stderr)
    uvicorn.run(
        create_app(registry, settings), host=args.host, port=args.port, log_level=args.log_level
    )
    return 0
