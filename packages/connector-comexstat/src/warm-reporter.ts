import cliProgress from 'cli-progress';
import type { WarmProgress, WarmSummary } from './warm-comexstat.js';

/** Options of {@link createWarmReporter}. */
export interface WarmReporterOptions {
  /** Where to write. @default process.stderr */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Force the bar (true) or plain lines (false). @default stream.isTTY */
  tty?: boolean;
}

/** A progress sink for {@link warmComexStat}: a bar on a terminal, one line per group otherwise. */
export interface WarmReporter {
  onProgress(progress: WarmProgress): void;
  /** Stops the bar and prints the summary line. */
  finish(
    summary: Partial<WarmSummary> &
      Pick<WarmSummary, 'keysWarmed' | 'keysSkipped' | 'keysTotal' | 'upstreamCalls' | 'generalCalls' | 'ms'>,
  ): void;
}

/** Creates a {@link WarmReporter}. */
export function createWarmReporter(options: WarmReporterOptions = {}): WarmReporter {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? stream.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  return {
    onProgress(p) {
      if (tty) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              stream,
              format: 'warming [{bar}] {percentage}% | {value}/{total} keys | {flow} {ano}',
              forceRedraw: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(p.total, 0, { flow: p.flow, ano: p.ano });
        }
        bar.update(p.done, { flow: p.flow, ano: p.ano });
        return;
      }
      stream.write(
        `warming ${p.flow} ${p.ano}: ${p.done}/${p.total} keys${p.skipped ? ' (already cached, skipped)' : ''}\n`,
      );
    },
    finish(s) {
      bar?.stop();
      stream.write(
        `warmed ${s.keysWarmed} keys (${s.keysSkipped} already cached${s.keysCopied ? `, ${s.keysCopied} copied between tiers` : ''}${s.keysLeftOut ? `, ${s.keysLeftOut} not stored: the next run asks again` : ''}) with ${s.upstreamCalls} upstream calls (${s.generalCalls} POST /general${
          s.callsByKind
            ? `; data ${s.callsByKind.data}, dates ${s.callsByKind.dates}, countries ${s.callsByKind.countries}`
            : ''
        }) in ${(s.ms / 1000).toFixed(1)} s\n`,
      );
      for (const t of s.tiers ?? [])
        stream.write(`  ${t.level} (${t.name}) holds ${t.held} of the ${s.keysTotal} keys\n`);
    },
  };
}
