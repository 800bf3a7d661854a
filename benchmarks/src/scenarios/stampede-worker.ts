// A child process of the stampede scenario: builds stacks on demand and runs bursts when told.
import {
  type BurstResult,
  buildStampedeStack,
  burst,
  type StampedeLib,
  type StampedeStack,
} from './stampede-stacks.js';

/** Messages from the parent. */
export type WorkerCommand =
  | { cmd: 'prepare'; lib: StampedeLib; redisUrl: string; marker: string }
  | { cmd: 'burst'; lib: StampedeLib; key: string; callers: number; loaderMs: number; startAt: number }
  | { cmd: 'exit' };

/** Messages to the parent. */
export type WorkerReply = { ok: true; burst?: BurstResult } | { ok: false; error: string };

const stacks = new Map<StampedeLib, StampedeStack>();
const send = (reply: WorkerReply) => process.send?.(reply);

process.on('message', async (message: WorkerCommand) => {
  try {
    if (message.cmd === 'prepare') {
      if (!stacks.has(message.lib))
        stacks.set(message.lib, buildStampedeStack(message.lib, message.redisUrl, message.marker));
      send({ ok: true });
    } else if (message.cmd === 'burst') {
      const stack = stacks.get(message.lib);
      if (!stack) throw new Error(`stack ${message.lib} not prepared`);
      send({
        ok: true,
        burst: await burst(stack, message.key, message.callers, message.loaderMs, message.startAt),
      });
    } else {
      await Promise.allSettled([...stacks.values()].map((s) => s.close()));
      send({ ok: true });
      process.exit(0);
    }
  } catch (error) {
    send({ ok: false, error: error instanceof Error ? error.message : String(error) });
  }
});
