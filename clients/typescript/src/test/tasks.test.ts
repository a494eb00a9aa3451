import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, TASKS, type Task, type TaskParams } from '../index.js';

// Compile-time checks: `tsc -p .` fails if a @ts-expect-error line compiles. Never called.
export async function typeChecks(c: Client): Promise<void> {
  await c.submit('t2v-A14B', { prompt: 'a fox', size: '1280*720', frame_num: 81, sample_solver: 'dpm++' });
  await c.submit('i2v-A14B', { prompt: 'a fox', image: 's3://bucket/fox.png' });
  await c.submit('ti2v-5B', { prompt: 'a fox', size: '1280*704' });
  await c.submit('s2v-14B', { prompt: 'a fox', image: '/in/a.png', audio: '/in/a.wav', size: '1024*704', infer_frames: 80 });
  await c.submit('animate-14B', { src_root_path: '/in/pre', replace_flag: true, refert_num: 1 });
  // @ts-expect-error t2v needs a prompt
  await c.submit('t2v-A14B', { size: '1280*720' });
  // @ts-expect-error t2v takes no image
  await c.submit('t2v-A14B', { prompt: 'a fox', image: '/in/a.png' });
  // @ts-expect-error i2v needs an image
  await c.submit('i2v-A14B', { prompt: 'a fox' });
  // @ts-expect-error ti2v's sizes are 704*1280 and 1280*704
  await c.submit('ti2v-5B', { prompt: 'a fox', size: '1280*720' });
  // @ts-expect-error s2v needs audio
  await c.submit('s2v-14B', { prompt: 'a fox', image: '/in/a.png' });
  // @ts-expect-error s2v takes no frame_num
  await c.submit('s2v-14B', { prompt: 'a fox', image: '/in/a.png', audio: '/in/a.wav', frame_num: 81 });
  // @ts-expect-error animate takes no prompt
  await c.submit('animate-14B', { src_root_path: '/in/pre', prompt: 'a fox' });
  // @ts-expect-error no such task
  await c.submit('t2v-5B', { prompt: 'a fox' });
  // @ts-expect-error sample_solver is unipc or dpm++
  await c.submit('t2v-A14B', { prompt: 'a fox', sample_solver: 'euler' });
  const anyTask = 'ti2v-5B' as Task;
  const p: TaskParams[Task] = { prompt: 'x' };
  await c.submit(anyTask, p);
}

it('lists the five tasks', () => {
  assert.deepEqual([...TASKS].sort(), ['animate-14B', 'i2v-A14B', 's2v-14B', 't2v-A14B', 'ti2v-5B']);
});
