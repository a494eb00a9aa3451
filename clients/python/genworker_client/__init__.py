"""Python client of the genworker HTTP API: submit video-generation jobs, wait for them,
follow them and cancel them.

    from genworker_client import Client, JobFailed

    with Client("http://127.0.0.1:8080", token="…") as client:
        job = client.submit("t2v-A14B", {"prompt": "A red fox running through snow", "size": "1280*720"})
        status = job.wait(timeout=3600)
        print(status.result["output"])

:class:`Client` blocks; :class:`AsyncClient` has the same API for asyncio.
"""
__version__ = "0.1.0"

from .aio import AsyncClient, AsyncJob  # noqa: E402
from .client import Client, Job  # noqa: E402
from .errors import (  # noqa: E402
    ApiConnectionError,
    ApiError,
    BadRequest,
    Forbidden,
    GenworkerError,
    JobCancelled,
    JobError,
    JobFailed,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from .models import (  # noqa: E402
    CANCELLED,
    COMPLETED,
    FAILED,
    JOB_STATES,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    JobPage,
    JobStatus,
    Progress,
    Queue,
    TimelineEntry,
    Worker,
)
from .retry import RetryPolicy  # noqa: E402

__all__ = [
    "__version__",
    "Client",
    "Job",
    "AsyncClient",
    "AsyncJob",
    "RetryPolicy",
    "JobStatus",
    "JobPage",
    "Progress",
    "TimelineEntry",
    "Worker",
    "Queue",
    "QUEUED",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "JOB_STATES",
    "TERMINAL_STATES",
    "GenworkerError",
    "ApiError",
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "TooLarge",
    "Unavailable",
    "ApiConnectionError",
    "JobError",
    "JobFailed",
    "JobCancelled",
    "WaitTimeout",
]
