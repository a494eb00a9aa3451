/** The wire types of the HTTP API (OpenAPI document `GET /v1/openapi.yaml`, components/schemas). */

/** A job's state as the API folds it from the fleet's ledger. */
export type JobState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** States a job never leaves. */
export const TERMINAL_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

/** True for `completed`, `failed` and `cancelled`. */
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

/** A running job's progress as its worker last reported it. */
export interface Progress {
  percent?: number | null;
  step?: number | null;
  total?: number | null;
  eta_s?: number | null;
  phase?: string | null;
}

export type TimelineEvent = 'submitted' | 'claimed' | 'cancel_requested' | 'expired' | 'released' | 'ended';

/** One step of a job's history (`GET /v1/jobs/{id}` only). */
export interface TimelineEntry {
  event: TimelineEvent;
  at?: string | null;
  attempt?: number | null;
  worker?: string | null;
  by?: string | null;
}

/** `reason` of a `failed` or `cancelled` result (docs/protocol.md, schemas/event.schema.json). */
export type ResultReason =
  | 'invalid_job'
  | 'exit_code'
  | 'signal'
  | 'timeout'
  | 'no_output'
  | 'spawn_failed'
  | 'delivery_limit'
  | 'cancelled_before_start'
  | 'cancelled_while_running'
  | 'invalid_input'
  | 'upload_failed'
  | 'gpu_out_of_memory'
  | 'gpu_error'
  | 'host_out_of_memory'
  | 'environment';

/** The job's terminal result event, as the worker published it (schemas/event.schema.json). */
export interface JobResult {
  version?: 1;
  id: string;
  task?: string;
  event: 'completed' | 'failed' | 'cancelled';
  status?: 'completed' | 'failed' | 'cancelled';
  /** failed and cancelled only */
  reason?: ResultReason;
  /** for people */
  message?: string;
  /** the video's path on the worker's disk (outputs.store local, or keep_local; failed/upload_failed) */
  output?: string;
  /** v1.1: s3://BUCKET/KEY, or the job's output.put_url without its query */
  output_uri?: string;
  /** v1.1: an HTTPS URL to fetch the stored video */
  output_url?: string;
  output_bytes?: number;
  output_sha256?: string;
  exit_code?: number;
  /** the signal that ended the generator */
  signal?: number;
  started_at?: string;
  ended_at?: string;
  elapsed_s?: number;
  worker: string;
  redelivered?: boolean;
  log_tail?: string[];
  step?: string;
  warm?: boolean;
  pipeline_build_s?: number;
}

/** A job as the API returns it (`Job` in the OpenAPI document). */
export interface JobStatus {
  id: string;
  task?: string | null;
  state: JobState;
  attempt?: number | null;
  worker?: string | null;
  submitter?: string | null;
  submitted_at?: string | null;
  started_at?: string | null;
  ended_at?: string | null;
  /** A cancel was asked for (stays true once set). */
  cancel_requested: boolean;
  progress?: Progress | null;
  /** The terminal result event; null until the job ends. */
  result?: JobResult | null;
  /** Present on `GET /v1/jobs/{id}`. */
  timeline?: TimelineEntry[];
}

/** The API's name for a job: the same object as {@link JobStatus}. */
export type Job = JobStatus;

/** A page of `GET /v1/jobs`, newest first. */
export interface JobPage {
  jobs: JobStatus[];
  /** Pass as `cursor` for the next page; null or absent on the last page. */
  next_cursor?: string | null;
}

/** A worker heard from in the API's window (`GET /v1/workers`). */
export interface WorkerInfo {
  name: string;
  node?: string | null;
  slots: number;
  busy: number;
  /** ids of the jobs it runs */
  running?: string[];
  last_heartbeat?: string;
  online: boolean;
  version?: string | null;
}

/** A queue and its depth (`GET /v1/queues`). */
export interface QueueInfo {
  name: string;
  depth: number;
}
