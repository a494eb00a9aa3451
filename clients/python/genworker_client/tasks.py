"""Per-task parameter types, after docs/schemas/job.schema.json (protocol v1.1).

``TypedDict`` s for type checkers and editors; at run time they are plain dicts, and the
worker validates. ``tests/test_tasks.py`` holds these to the JSON Schema, so they cannot
drift from it silently.

    from genworker_client.tasks import T2VParams
    params: T2VParams = {"prompt": "A red fox running through snow", "size": "1280*720", "sample_steps": 40}
    client.submit("t2v-A14B", params)
"""
from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Literal, Type, TypedDict

__all__ = [
    "TaskName",
    "Size",
    "SampleSolver",
    "T2VParams",
    "I2VParams",
    "TI2VParams",
    "S2VParams",
    "AnimateParams",
    "Output",
    "Webhook",
    "WebhookEvent",
    "ResultEvent",
    "ResultProgress",
    "TASKS",
    "TASK_PARAMS",
    "REQUIRED_PARAMS",
    "ACCEPTED_PARAMS",
    "TASK_SIZES",
]

TaskName = Literal["t2v-A14B", "i2v-A14B", "ti2v-5B", "s2v-14B", "animate-14B"]
TASKS = ("t2v-A14B", "i2v-A14B", "ti2v-5B", "s2v-14B", "animate-14B")

#: Every size any task accepts ("W*H"); each task accepts a subset (TASK_SIZES).
Size = Literal["720*1280", "1280*720", "480*832", "832*480", "704*1280", "1280*704", "1024*704", "704*1024"]
SampleSolver = Literal["unipc", "dpm++"]

TASK_SIZES: Dict[str, List[str]] = {
    "t2v-A14B": ["720*1280", "1280*720", "480*832", "832*480"],
    "i2v-A14B": ["720*1280", "1280*720", "480*832", "832*480"],
    "ti2v-5B": ["704*1280", "1280*704"],
    "s2v-14B": ["720*1280", "1280*720", "480*832", "832*480", "704*1280", "1280*704", "1024*704", "704*1024"],
    "animate-14B": ["720*1280", "1280*720"],
}


class _Sampling(TypedDict, total=False):
    """Options every task accepts (generate.py's sampling flags)."""

    size: Size
    base_seed: int  # -1 .. 4294967295
    sample_steps: int  # 1 .. 1000
    sample_shift: float  # 0 .. 100
    sample_guide_scale: float  # 0 .. 50
    sample_solver: SampleSolver


class _PromptRequired(TypedDict):
    prompt: str  # 1 .. 20000 characters


class T2VParams(_PromptRequired, _Sampling, total=False):
    """``t2v-A14B``: text to video. Required: ``prompt``. Sizes 720*1280 1280*720 480*832 832*480."""

    frame_num: int  # 4n+1, 5 .. 1001


class _ImageRequired(_PromptRequired):
    image: str  # absolute path under inputs.roots, https:// URL or s3://BUCKET/KEY


class I2VParams(_ImageRequired, _Sampling, total=False):
    """``i2v-A14B``: image to video. Required: ``prompt``, ``image``. Sizes as t2v."""

    frame_num: int


class TI2VParams(_PromptRequired, _Sampling, total=False):
    """``ti2v-5B``: text (and optionally image) to video. Required: ``prompt``.
    Sizes 704*1280 1280*704."""

    frame_num: int
    image: str


class _S2VRequired(_PromptRequired):
    image: str
    audio: str  # absolute path under inputs.roots, https:// URL or s3://BUCKET/KEY


class S2VParams(_S2VRequired, _Sampling, total=False):
    """``s2v-14B``: speech to video. Required: ``prompt``, ``image``, ``audio``. All eight sizes."""

    pose_video: str
    num_clip: int  # 1 .. 1000
    infer_frames: int  # multiple of 4, 4 .. 1000
    start_from_ref: bool


class _AnimateRequired(TypedDict):
    src_root_path: str  # a preprocessed directory under inputs.roots (not a URL)


class AnimateParams(_AnimateRequired, _Sampling, total=False):
    """``animate-14B``: character animation. Required: ``src_root_path``. Sizes 720*1280 1280*720.
    No prompt."""

    frame_num: int
    refert_num: int  # 1 .. 77, default 1
    replace_flag: bool
    use_relighting_lora: bool


TASK_PARAMS: Dict[str, Type[Any]] = {
    "t2v-A14B": T2VParams,
    "i2v-A14B": I2VParams,
    "ti2v-5B": TI2VParams,
    "s2v-14B": S2VParams,
    "animate-14B": AnimateParams,
}

#: Required params per task (from the TypedDicts).
REQUIRED_PARAMS: Dict[str, FrozenSet[str]] = {t: frozenset(c.__required_keys__) for t, c in TASK_PARAMS.items()}
#: Every param a task accepts (from the TypedDicts).
ACCEPTED_PARAMS: Dict[str, FrozenSet[str]] = {
    t: frozenset(c.__required_keys__) | frozenset(c.__optional_keys__) for t, c in TASK_PARAMS.items()
}


# --- protocol 1.1 extras (submit(..., output=..., webhook=...)) ---


class _OutputRequired(TypedDict):
    put_url: str  # https:// (http:// only with egress.allow_http)


class Output(_OutputRequired, total=False):
    """The job's own destination for its video: a URL the client presigned for a PUT, and
    the headers signed with it. Pass as ``submit(..., output={...})``."""

    headers: Dict[str, str]


WebhookEvent = Literal["started", "progress", "completed", "failed", "cancelled"]


class _WebhookRequired(TypedDict):
    url: str


class Webhook(_WebhookRequired, total=False):
    """Where the worker POSTs the job's events (Standard Webhooks signatures). Pass as
    ``submit(..., webhook={...})``; ``events`` defaults to completed, failed, cancelled."""

    events: List[WebhookEvent]


# --- the terminal result event (JobStatus.result) ---


class ResultProgress(TypedDict, total=False):
    step: int
    total: int
    percent: int
    eta_s: int
    phase: str
    clip: int


class ResultEvent(TypedDict, total=False):
    """The shape of ``JobStatus.result``: the job's terminal event (docs/schemas/event.schema.json).

    ``status`` is completed, failed or cancelled; ``reason`` (failed, cancelled) one of
    invalid_job, exit_code, signal, timeout, no_output, spawn_failed, delivery_limit,
    cancelled_before_start, cancelled_while_running, invalid_input, upload_failed,
    gpu_out_of_memory, gpu_error, host_out_of_memory, environment.
    """

    version: int
    id: str
    task: str
    event: str
    status: str
    reason: str
    message: str
    output: str
    output_uri: str
    output_url: str
    output_bytes: int
    output_sha256: str
    exit_code: int
    signal: int
    started_at: str
    ended_at: str
    elapsed_s: float
    worker: str
    redelivered: bool
    log_tail: List[str]
    step: str
    progress: ResultProgress
    warm: bool
    pipeline_build_s: float
