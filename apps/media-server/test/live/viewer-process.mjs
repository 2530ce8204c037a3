// A live viewer in its own process, so what it receives never counts toward
// the server's memory in tests that measure it. Usage:
//   node viewer-process.mjs URL FILE [BYTES_PER_TICK TICK_MS]
// Throttled, it reads at most BYTES_PER_TICK every TICK_MS from a paused
// response until it reads the line "unthrottle" on stdin. When the response
// is over it prints {"status","complete","bytes"} as JSON and exits.
import { createWriteStream } from 'node:fs';
import { get } from 'node:http';
import { createInterface } from 'node:readline';

const [url, path, tickBytes, tickMs] = process.argv.slice(2);
const file = createWriteStream(path);
let bytes = 0;

get(url, (res) => {
  let ended = false;
  let timer;
  const take = (chunk) => {
    if (chunk === null) return;
    bytes += chunk.length;
    file.write(chunk);
  };
  const flow = () => {
    clearInterval(timer);
    res.on('data', take);
    res.resume();
  };
  if (tickBytes === undefined) {
    flow();
  } else {
    res.pause();
    timer = setInterval(() => {
      const n = Math.min(Number(tickBytes), res.readableLength);
      take(n > 0 ? res.read(n) : res.read(0));
    }, Number(tickMs));
    createInterface({ input: process.stdin }).on('line', (line) => {
      if (line === 'unthrottle') flow();
    });
  }
  res.on('end', () => {
    ended = true;
  });
  res.on('error', () => {});
  res.on('close', () => {
    clearInterval(timer);
    file.end(() => {
      process.stdout.write(
        `${JSON.stringify({ status: res.statusCode, complete: ended && res.complete, bytes })}\n`,
      );
      process.exit(0);
    });
  });
}).on('error', (error) => {
  process.stdout.write(
    `${JSON.stringify({ status: 0, complete: false, bytes, error: error.message })}\n`,
  );
  process.exit(0);
});
