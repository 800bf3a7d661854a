/** A redis-server process started for a test. */
export interface RedisServer {
  host: string;
  port: number;
  dir: string;
  password: string | undefined;
  readonly pid: number | undefined;
  /** `redis://[:password@]127.0.0.1:port` */
  url: string;
  cli(...args: string[]): string;
  signal(signal: NodeJS.Signals): boolean;
  kill(): Promise<void>;
  restart(overrides?: { password?: string; args?: string[] }): Promise<RedisServer>;
  stop(): Promise<void>;
}
export interface RedisCluster {
  nodes: RedisServer[];
  startupNodes: { host: string; port: number }[];
  stop(): Promise<void>;
}
export function freePort(): Promise<number>;
export function startRedis(options?: {
  password?: string;
  port?: number;
  dir?: string;
  args?: string[];
}): Promise<RedisServer>;
export function startRedisCluster(options?: { masters?: number; password?: string }): Promise<RedisCluster>;
