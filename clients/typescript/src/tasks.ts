/**
 * Each task's `params`, by hand from docs/schemas/job.schema.json (protocol v1.1) and the table in
 * docs/protocol.md. `Client.submit` takes `TaskParams[T]` for task `T`, so a literal with a param
 * the task does not accept, or without one it requires, does not compile.
 *
 * Rules the types cannot say are in the comments; the worker checks them all and ends a job that
 * breaks one `failed`, reason `invalid_job`.
 */

/** Sizes of t2v-A14B and i2v-A14B. */
export type A14BSize = '720*1280' | '1280*720' | '480*832' | '832*480';
/** Sizes of ti2v-5B. */
export type TI2V5BSize = '704*1280' | '1280*704';
/** Sizes of animate-14B. */
export type Animate14BSize = '720*1280' | '1280*720';
/** Sizes of s2v-14B: all eight. */
export type Size = A14BSize | TI2V5BSize | '1024*704' | '704*1024';

export type SampleSolver = 'unipc' | 'dpm++';

/**
 * An input file: an absolute path that resolves (symlinks followed) under one of the worker's
 * `inputs.roots`; or (v1.1) an `https://` URL, presigned GETs included, when the worker has
 * `inputs.urls: true`; or `s3://BUCKET/KEY` for a bucket in its `inputs.s3_buckets`.
 */
export type InputRef = string;

/** The sampling options every task accepts. */
export interface SamplingParams {
  /** -1 to 4294967295 */
  base_seed?: number;
  /** 1 to 1000 */
  sample_steps?: number;
  /** 0 to 100 */
  sample_shift?: number;
  /** 0 to 50 */
  sample_guide_scale?: number;
  sample_solver?: SampleSolver;
}

/** t2v-A14B: text to video. */
export interface T2VA14BParams extends SamplingParams {
  /** 1 to 20000 characters */
  prompt: string;
  size?: A14BSize;
  /** 4n+1, 5 to 1001 */
  frame_num?: number;
}

/** i2v-A14B: image to video. */
export interface I2VA14BParams extends T2VA14BParams {
  image: InputRef;
}

/** ti2v-5B: text (and optionally an image) to video. */
export interface TI2V5BParams extends SamplingParams {
  /** 1 to 20000 characters */
  prompt: string;
  size?: TI2V5BSize;
  /** 4n+1, 5 to 1001 */
  frame_num?: number;
  image?: InputRef;
}

/** s2v-14B: speech to video. */
export interface S2V14BParams extends SamplingParams {
  /** 1 to 20000 characters */
  prompt: string;
  image: InputRef;
  audio: InputRef;
  size?: Size;
  pose_video?: InputRef;
  /** 1 to 1000 */
  num_clip?: number;
  /** a multiple of 4, 4 to 1000 */
  infer_frames?: number;
  start_from_ref?: boolean;
}

/** animate-14B: character animation / replacement. No prompt. */
export interface Animate14BParams extends SamplingParams {
  /** the preprocessed directory, under `inputs.roots` (not by URL) */
  src_root_path: string;
  size?: Animate14BSize;
  /** 4n+1, 5 to 1001 */
  frame_num?: number;
  /** 1 to 77; default 1 */
  refert_num?: number;
  replace_flag?: boolean;
  use_relighting_lora?: boolean;
}

/** Each task's params type, by task name. */
export interface TaskParams {
  't2v-A14B': T2VA14BParams;
  'i2v-A14B': I2VA14BParams;
  'ti2v-5B': TI2V5BParams;
  's2v-14B': S2V14BParams;
  'animate-14B': Animate14BParams;
}

/** A task name. */
export type Task = keyof TaskParams;

/** Every task, in the protocol's order. */
export const TASKS: readonly Task[] = ['t2v-A14B', 'i2v-A14B', 'ti2v-5B', 's2v-14B', 'animate-14B'];

/** v1.1: the job's own destination for its video, a URL presigned for a PUT. */
export interface OutputTarget {
  /** `https://…` (or `http://` where the worker's egress rules allow it), at most 8192 characters */
  put_url: string;
  /** headers signed with the URL (e.g. `Content-Type: video/mp4`), at most 32 */
  headers?: Record<string, string>;
}

export type WebhookEvent = 'started' | 'progress' | 'completed' | 'failed' | 'cancelled';

/** v1.1: where the job's events are POSTed, signed the Standard Webhooks way. */
export interface Webhook {
  url: string;
  /** default `['completed', 'failed', 'cancelled']` */
  events?: WebhookEvent[];
}
