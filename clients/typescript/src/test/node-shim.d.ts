// The few Node built-ins the tests use, typed by hand: @types/node is an npm package and this
// project takes nothing from npm. The library itself (src/*.ts) imports none of these.

declare module 'node:test' {
  export interface TestContext {
    readonly name: string;
    readonly signal: AbortSignal;
    diagnostic(message: string): void;
    skip(message?: string): void;
    todo(message?: string): void;
  }
  export interface TestOptions {
    skip?: boolean | string;
    todo?: boolean | string;
    only?: boolean;
    timeout?: number;
    concurrency?: number | boolean;
  }
  export type TestFn = (t: TestContext) => void | Promise<void>;
  export type SuiteFn = () => void | Promise<void>;
  export interface HookOptions {
    timeout?: number;
  }
  export function test(name: string, fn: TestFn): Promise<void>;
  export function test(name: string, options: TestOptions, fn: TestFn): Promise<void>;
  export function it(name: string, fn: TestFn): Promise<void>;
  export function it(name: string, options: TestOptions, fn: TestFn): Promise<void>;
  export function describe(name: string, fn: SuiteFn): Promise<void>;
  export function describe(name: string, options: TestOptions, fn: SuiteFn): Promise<void>;
  export function before(fn: () => void | Promise<void>, options?: HookOptions): void;
  export function after(fn: () => void | Promise<void>, options?: HookOptions): void;
  export function beforeEach(fn: () => void | Promise<void>, options?: HookOptions): void;
  export function afterEach(fn: () => void | Promise<void>, options?: HookOptions): void;
  export default test;
}

declare module 'node:assert/strict' {
  type ErrorMatcher = RegExp | (new (...args: never[]) => unknown) | ((err: any) => boolean) | object;
  interface Assert {
    (value: unknown, message?: string | Error): asserts value;
    ok(value: unknown, message?: string | Error): asserts value;
    equal<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
    strictEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
    notEqual(actual: unknown, expected: unknown, message?: string | Error): void;
    deepEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
    deepStrictEqual<T>(actual: unknown, expected: T, message?: string | Error): asserts actual is T;
    notDeepEqual(actual: unknown, expected: unknown, message?: string | Error): void;
    match(value: string, regexp: RegExp, message?: string | Error): void;
    throws(fn: () => unknown, expected?: ErrorMatcher, message?: string | Error): void;
    rejects(
      block: Promise<unknown> | (() => Promise<unknown>),
      expected?: ErrorMatcher,
      message?: string | Error,
    ): Promise<void>;
    doesNotReject(block: Promise<unknown> | (() => Promise<unknown>), message?: string | Error): Promise<void>;
    fail(message?: string | Error): never;
  }
  const assert: Assert;
  export default assert;
}

declare module 'node:child_process' {
  export interface ExecOptions {
    env?: Record<string, string | undefined>;
    cwd?: string;
    timeout?: number;
    maxBuffer?: number;
    killSignal?: string;
  }
  export interface ExecError extends Error {
    code?: number | string | null;
    killed?: boolean;
    signal?: string | null;
  }
  export interface ChildProcess {
    readonly pid?: number;
    kill(signal?: string): boolean;
  }
  export type ExecCallback = (error: ExecError | null, stdout: string, stderr: string) => void;
  export function exec(command: string, options: ExecOptions, callback: ExecCallback): ChildProcess;
  export function execFile(file: string, args: readonly string[], options: ExecOptions, callback: ExecCallback): ChildProcess;
}

declare module 'node:process' {
  const process: {
    env: Record<string, string | undefined>;
    readonly execPath: string;
    readonly pid: number;
  };
  export default process;
}

declare module 'node:url' {
  export function fileURLToPath(url: string | URL): string;
  export function pathToFileURL(path: string): URL;
}
