/**
 * The next local time at `hour:minute` strictly after `from`.
 * @param hour 0-23, local time
 * @param minute 0-59
 */
export function nextDailyRun(from: Date, hour: number, minute = 0): Date {
  const next = new Date(from.getFullYear(), from.getMonth(), from.getDate(), hour, minute, 0, 0);
  if (next.getTime() <= from.getTime()) next.setDate(next.getDate() + 1);
  return next;
}

/** Options of {@link scheduleDaily}. */
export interface DailyScheduleOptions {
  /** Hour of the day, local time (0-23). @default 3 */
  hour?: number;
  /** Minute of the hour (0-59). @default 0 */
  minute?: number;
  /** Clock, in epoch ms. @default Date.now */
  now?: () => number;
}

/**
 * Runs `task` every day at `hour:minute` local time, on an unref'd timer (it never keeps the process
 * alive). A task still running when the next time comes is not started twice. Returns a function
 * that stops the schedule.
 */
export function scheduleDaily(task: () => Promise<unknown>, options: DailyScheduleOptions = {}): () => void {
  const now = options.now ?? Date.now;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let running = false;
  const arm = () => {
    if (stopped) return;
    const at = nextDailyRun(new Date(now()), options.hour ?? 3, options.minute ?? 0).getTime();
    timer = setTimeout(fire, Math.max(0, at - now()));
    timer.unref();
  };
  const fire = () => {
    if (!running) {
      running = true;
      task()
        .catch(() => {})
        .finally(() => {
          running = false;
        });
    }
    arm();
  };
  arm();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
