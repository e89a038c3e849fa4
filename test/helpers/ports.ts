/**
 * A port for a server another process will open later (a Temporal dev server, PostgreSQL, `cxsync dev`).
 *
 * Asking the kernel (listen on port 0) hands out a port from the ephemeral range, and the port is free again the
 * moment the probe closes — free for every other program that asks the kernel in the meantime. The Temporal dev
 * server opens several internal services on kernel-chosen ports while it starts, so a port chosen that way for
 * the Graph emulator was once taken by Temporal before `cxsync dev` could open it (CI, stop 14). Ports chosen
 * here lie below the ephemeral range, where the kernel never assigns one on its own; a clash needs another test
 * to draw the same random number at the same moment, and a port this process already handed out is not reused.
 */
import fs from 'node:fs';
import net from 'node:net';

/** The first port of the kernel's ephemeral range (Linux; 32768 elsewhere, the usual lower bound). */
function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : 32768;
  } catch {
    return 32768;
  }
}

const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  const high = ephemeralLow() - 1;
  // A kernel whose ephemeral range starts low leaves no room below it: take the range above 10000 as it is.
  const [low, top] = high > 11_000 ? [Math.max(10_000, high - 20_000), high] : [10_000, 60_999];
  for (let tries = 0; tries < 200; tries++) {
    const port = low + Math.floor(Math.random() * (top - low + 1));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port found between ${low} and ${top} after 200 tries`);
}
