/**
 * Starts a real `@tus/server` for the browser project and hands its
 * endpoint to the page; the browser test then checks the stored bytes
 * through this setup's own endpoint (`/__stored?url=`), which reads the
 * server's file store from Node.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startTusNodeServer } from './tus-node-server';

declare module 'vitest' {
  export interface ProvidedContext {
    tusEndpoint: string;
    storedSha256Url: string;
  }
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const tus = await startTusNodeServer();
  const checker = createServer(async (req, res) => {
    res.setHeader('access-control-allow-origin', '*');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('url');
    if (url === null) {
      res.writeHead(400).end('missing url');
      return;
    }
    try {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(await tus.storedSha256(url));
    } catch (error) {
      res.writeHead(404).end(String(error));
    }
  });
  await new Promise<void>((resolve) => checker.listen(0, '127.0.0.1', resolve));
  const { port } = checker.address() as AddressInfo;
  project.provide('tusEndpoint', tus.endpoint);
  project.provide('storedSha256Url', `http://127.0.0.1:${port}/`);
  return async () => {
    await new Promise<void>((resolve) => checker.close(() => resolve()));
    await tus.close();
  };
}
