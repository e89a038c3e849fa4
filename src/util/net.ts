/** Whether something accepts TCP connections at host:port — how the launchers tell a running service from a free port. */
import net from 'node:net';

export function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
