/**
 * A TCP proxy to put between the stack and one emulator, that a test can stall: while stalled, every
 * connection (open or new) carries no bytes either way. Two kinds of stall:
 *
 * - `stall()` (hold): requests are accepted and held, as a frozen store would hold them, and on
 *   `resume` what was held is delivered, as TCP retransmission would after a short partition;
 * - `stall({ drop: true })`: a black hole: what was sent is lost, and connections that were open during
 *   the stall never carry anything again (as after a store restart or a long partition); only
 *   connections opened after `resume` work. Requests in flight at the stall do not land late.
 *
 * A client that gave up (its timeout) closes its socket; the proxy then closes the other side too.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface StallProxy {
  /** `http://127.0.0.1:<port>`: the endpoint to give the clients instead of the target's. */
  readonly url: string;
  readonly stalled: boolean;
  /** Connections accepted so far (tests can check traffic went through the proxy). */
  readonly connections: number;
  stall(options?: { drop?: boolean }): void;
  resume(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `target` (`http://host:port`) on a free port of 127.0.0.1. */
export async function startStallProxy(target: string): Promise<StallProxy> {
  const { hostname, port } = new URL(target);
  let stalled = false;
  let dropping = false;
  /** Connections that a dropping stall cut off for good. */
  const dead = new WeakSet<Socket>();
  let connections = 0;
  const flushes = new Set<() => void>();
  const sockets = new Set<Socket>();

  /** Forwards `from` → `to`, holding chunks while stalled. */
  const forward = (from: Socket, to: Socket) => {
    const held: Buffer[] = [];
    const flush = () => {
      while (held.length > 0 && !to.destroyed) to.write(held.shift()!);
    };
    flushes.add(flush);
    from.on('data', (chunk: Buffer) => {
      if (dead.has(from)) return;
      if (stalled && dropping) {
        dead.add(from).add(to);
        held.length = 0;
        return;
      }
      if (stalled || held.length > 0) held.push(chunk);
      else to.write(chunk);
    });
    from.on('close', () => flushes.delete(flush));
  };

  const server: Server = createServer((client) => {
    connections++;
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    if (stalled && dropping) dead.add(client).add(upstream);
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const own = typeof address === 'object' && address ? address.port : 0;

  return {
    url: `http://127.0.0.1:${own}`,
    get stalled() {
      return stalled;
    },
    get connections() {
      return connections;
    },
    stall(options = {}) {
      stalled = true;
      dropping = options.drop === true;
      // Every connection open now is cut off by a dropping stall, busy or idle (a pooled keep-alive one).
      if (dropping) for (const s of sockets) dead.add(s);
    },
    resume() {
      stalled = false;
      if (!dropping) for (const flush of flushes) flush();
      dropping = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
