import net from 'node:net';

/** How a {@link FaultProxy} treats traffic. */
export type ProxyMode = 'pass' | 'blackhole' | 'refuse';

/** A loopback TCP proxy in front of a real server, for injecting network faults into a tier. */
export interface FaultProxy {
  port: number;
  /** `pass` forwards; `blackhole` accepts and forwards nothing (a stalled server); `refuse` closes the port. */
  setMode(mode: ProxyMode): Promise<void>;
  /** Cuts every open connection (the server side sees them drop), keeps listening. */
  resetConnections(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<FaultProxy> {
  let mode: ProxyMode = 'pass';
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const onConnection = (client: net.Socket) => {
    track(client);
    if (mode === 'blackhole') return;
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
  };
  let server = net.createServer(onConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const resetConnections = () => {
    for (const s of sockets) s.destroy();
  };
  return {
    port,
    resetConnections,
    async setMode(next) {
      if (next === mode) return;
      const wasRefusing = mode === 'refuse';
      mode = next;
      if (next === 'blackhole') {
        // Stop forwarding on open connections too: the server looks frozen.
        for (const s of sockets) s.unpipe();
        for (const s of sockets) s.pause();
      } else if (next === 'refuse') {
        resetConnections();
        await new Promise<void>((r) => server.close(() => r()));
      } else {
        resetConnections();
        if (wasRefusing) {
          server = net.createServer(onConnection);
          await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
        }
      }
    },
    async close() {
      resetConnections();
      if (mode !== 'refuse') await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
