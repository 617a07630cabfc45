/**
 * The local endpoints have no authentication (s3rver accepts any signature, dynalite and
 * local-aws-sqs check none, the Step Functions and Rekognition endpoints none): they must be
 * reachable from this machine only. Every one listens on 127.0.0.1, and a connection to the
 * machine's other addresses on the same port is refused.
 */
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { startHarness } from './harness.ts';

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 1_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('reliability: local endpoints', () => {
  it('listen on 127.0.0.1 only', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && !a.internal && a.family === 'IPv4')
      .map((a) => a!.address);
    const h = await startHarness({});
    try {
      for (const [service, endpoint] of Object.entries(h.stack.endpoints)) {
        const url = new URL(endpoint);
        expect(url.hostname, service).toBe('127.0.0.1');
        expect(await canConnect('127.0.0.1', Number(url.port)), `${service} on 127.0.0.1`).toBe(true);
        for (const address of external) expect(await canConnect(address, Number(url.port)), `${service} on ${address}:${url.port}`).toBe(false);
      }
    } finally {
      await h.stop();
    }
  }, 60_000);
});
