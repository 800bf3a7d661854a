// Starts one gateway in the foreground, configured only by the environment: the Dockerfile's
// command, and what scripts and tests use to start instances. SIGTERM/SIGINT drain and exit.
import { startGateway } from './gateway.js';
import { collectSecrets, scrubSecrets } from './secrets.js';

async function main(): Promise<void> {
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway();
  } catch (error) {
    const e = error as { code?: string; message?: string };
    // Whatever the error quotes (a driver message, a URL), no configured secret reaches stderr.
    const text = `integration gateway failed to start: ${e.code ? `[${e.code}] ` : ''}${e.message ?? String(error)}\n`;
    process.stderr.write(scrubSecrets(text, collectSecrets(process.env)));
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    gateway.logger.info({ signal }, 'draining');
    const timer = setTimeout(() => {
      gateway.logger.error('shutdown timed out; exiting');
      process.exit(1);
    }, gateway.config.shutdownTimeoutMs);
    timer.unref();
    gateway.close().then(
      () => process.exit(0),
      (error: Error) => {
        gateway.logger.error({ err: { message: error.message } }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (reason) => {
    gateway.logger.error(
      { err: { message: (reason as Error)?.message ?? String(reason) } },
      'unhandled rejection',
    );
  });
}

void main();
